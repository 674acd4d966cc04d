//! The life of chats: a personal chat created, a group created, members joining, kicked out or
//! leaving, the admin changing, a group deleted.

use events_schema::events::{
    AdminChanged, GroupCreated, GroupDeleted, MemberAdded, MemberRemoved, PersonalChatCreated,
    RemovalReason,
};
use events_schema::UserId;
use projection_service::queries;

use super::audience::{emit, others, Audience, Delivery};
use super::memo::{name_of, ChatMemo, Member};
use crate::state::AppState;
use crate::wire;

/// `create-personal-chat-partner`, to the partner, naming the creator.
pub(super) async fn personal_created(
    state: &AppState,
    d: &mut Delivery<'_>,
    created: &PersonalChatCreated,
) -> anyhow::Result<()> {
    let name = name_of(state, &created.creator).await?;
    let payload = wire::PersonalChatCreated {
        chat_id: Some(&created.chat_id),
        partner: &name,
        partner_id: &created.creator,
    };
    let to = Audience::users([created.partner.clone()]);
    emit(state, d, to, "create-personal-chat-partner", &payload);
    if d.is_live() {
        let newcomers = vec![created.creator.clone(), created.partner.clone()];
        state.presence.met(newcomers, Vec::new());
    }
    Ok(())
}

/// `create-group-chat-receiver`, to every member but the admin who created it.
pub(super) fn group_created(state: &AppState, d: &mut Delivery<'_>, created: &GroupCreated) {
    let payload = wire::GroupCreated {
        group_id: &created.chat_id,
        name: &created.name,
    };
    let to = Audience::users(
        created
            .members
            .iter()
            .filter(|m| *m != &created.admin)
            .cloned(),
    );
    emit(state, d, to, "create-group-chat-receiver", &payload);
    if d.is_live() {
        state.presence.met(created.members.clone(), Vec::new());
    }
}

/// `add-member-success` to every member but the new one, `new-grp-added` to the new one.
pub(super) async fn member_added(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &mut Delivery<'_>,
    added: &MemberAdded,
) -> anyhow::Result<()> {
    let MemberAdded { chat_id, member } = added;
    let name = name_of(state, member).await?;
    let joined = Member {
        id: member.clone(),
        name: name.clone(),
    };
    let everyone = memo
        .with_member(state, chat_id, joined, d.position())
        .await?;
    let to = everyone.map_or_else(Vec::new, |entry| {
        others(&entry.members_at(d.position()), member)
    });
    if d.is_live() {
        state.presence.met(vec![member.clone()], to.clone());
    }
    let payload = wire::MemberJoined {
        chat_id,
        member,
        member_name: &name,
    };
    emit(
        state,
        d,
        Audience::users(to),
        "add-member-success",
        &payload,
    );
    let payload = wire::AddedToGroup { chat_id };
    emit(
        state,
        d,
        Audience::users([member.clone()]),
        "new-grp-added",
        &payload,
    );
    Ok(())
}

/// Kicked out: `kicked-out` to the member, `someone-kicked-out` to the remaining members but the
/// admin. Left: `user-left-grp` to the remaining members.
pub(super) async fn member_removed(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &mut Delivery<'_>,
    removed: &MemberRemoved,
    actor: Option<&UserId>,
) -> anyhow::Result<()> {
    let MemberRemoved {
        chat_id,
        member,
        reason,
    } = removed;
    // At the removal's position the member still is one (their stretch ends there).
    let remaining: Vec<Member> = memo
        .members_at(state, chat_id, d.position())
        .await?
        .into_iter()
        .filter(|m| &m.id != member)
        .collect();
    match reason {
        RemovalReason::Kicked => {
            let group = queries::chat(&state.reads, chat_id)
                .await?
                .map(|c| c.name)
                .unwrap_or_default();
            let payload = wire::KickedOut {
                group_id: chat_id,
                group_name: &group,
            };
            emit(
                state,
                d,
                Audience::users([member.clone()]),
                "kicked-out",
                &payload,
            );
            let to = match actor {
                Some(admin) => others(&remaining, admin),
                None => remaining.iter().map(|m| m.id.clone()).collect(),
            };
            let payload = wire::SomeoneKickedOut {
                group_id: chat_id,
                group_name: &group,
                member,
            };
            emit(
                state,
                d,
                Audience::users(to),
                "someone-kicked-out",
                &payload,
            );
        }
        RemovalReason::Left => {
            let name = name_of(state, member).await?;
            let payload = wire::UserLeftGroup {
                group_id: chat_id,
                user: member,
                user_name: &name,
            };
            let to = Audience::users(remaining.into_iter().map(|m| m.id));
            emit(state, d, to, "user-left-grp", &payload);
        }
    }
    Ok(())
}

/// `change-admin-success-receiver`, to every member but the former admin.
pub(super) async fn admin_changed(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &mut Delivery<'_>,
    changed: &AdminChanged,
) -> anyhow::Result<()> {
    let everyone = memo
        .members_at(state, &changed.chat_id, d.position())
        .await?;
    let to = Audience::users(others(&everyone, &changed.from));
    let payload = wire::AdminChanged {
        admin: &changed.to,
        group_id: &changed.chat_id,
    };
    emit(state, d, to, "change-admin-success-receiver", &payload);
    Ok(())
}

/// `delete-grp-success-receiver`, to every member but the admin who deleted it.
pub(super) async fn group_deleted(
    state: &AppState,
    memo: &mut ChatMemo,
    d: &mut Delivery<'_>,
    deleted: &GroupDeleted,
    actor: Option<&UserId>,
) -> anyhow::Result<()> {
    let everyone = memo
        .members_at(state, &deleted.chat_id, d.position())
        .await?;
    let to = match actor {
        Some(admin) => others(&everyone, admin),
        None => everyone.iter().map(|m| m.id.clone()).collect(),
    };
    let payload = wire::GroupDeleted {
        group_id: &deleted.chat_id,
    };
    emit(
        state,
        d,
        Audience::users(to),
        "delete-grp-success-receiver",
        &payload,
    );
    Ok(())
}
