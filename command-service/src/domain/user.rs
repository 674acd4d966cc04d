//! The user aggregate (stream `user-<id>`): registration, renaming before verification (by
//! signing up again) and after it (by the user's choice), verification, and whether a verified
//! user lets their contacts see them online.

use events_schema::events::{PresenceVisibilitySet, UserRegistered, UserRenamed, UserVerified};
use events_schema::{
    Accepted, DomainEvent, Position, RecordedEvent, RefusalCode, UserId, UserName,
};

use super::{Aggregate, Decision, Refusal};

/// What a user's stream can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// A new account signed up.
    Register { user_id: UserId, name: UserName },
    /// An unverified account signed up again, possibly with another name.
    Rename { user_id: UserId, name: UserName },
    /// The account's e-mail address was verified.
    Verify { user_id: UserId },
    /// The user shows themselves to their contacts as online, or hides.
    SetPresenceVisibility { user_id: UserId, visible: bool },
    /// A verified user chose another name.
    ChangeName { user_id: UserId, name: UserName },
}

/// Where a user is in their life: verification is final, and only an unverified user's name
/// changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum User {
    #[default]
    Unregistered,
    /// Signed up, not verified yet. `last_position` (of the latest event) answers a rename to the
    /// name they already have.
    Registered {
        name: UserName,
        last_position: Position,
    },
    /// Verified by the event at `at`, which answers a repeated verification. `visible` is their
    /// latest presence choice (visible until they choose otherwise), made by the event at
    /// `visibility_at` (the verification until then), which answers a repeated choice. `name` is
    /// theirs since the event at `named_at`, which answers a rename to the same name.
    Verified {
        at: Position,
        visible: bool,
        visibility_at: Position,
        name: UserName,
        named_at: Position,
    },
}

impl Aggregate for User {
    type Command = UserCommand;

    fn decide(&self, command: &UserCommand) -> Result<Decision, Refusal> {
        match command {
            UserCommand::Register { user_id, name } => self.register(user_id, name),
            UserCommand::Rename { user_id, name } => self.rename(user_id, name),
            UserCommand::Verify { user_id } => self.verify(user_id),
            UserCommand::SetPresenceVisibility { user_id, visible } => {
                self.set_presence_visibility(user_id, *visible)
            }
            UserCommand::ChangeName { user_id, name } => self.change_name(user_id, name),
        }
    }

    fn apply(&mut self, event: &DomainEvent, recorded: &RecordedEvent) {
        let last_position = recorded.position;
        match (&*self, event) {
            (User::Unregistered, DomainEvent::UserRegistered(UserRegistered { name, .. }))
            | (User::Registered { .. }, DomainEvent::UserRenamed(UserRenamed { name, .. })) => {
                *self = User::Registered {
                    name: name.clone(),
                    last_position,
                }
            }
            (
                User::Registered {
                    name,
                    last_position: named_at,
                },
                DomainEvent::UserVerified(_),
            ) => {
                *self = User::Verified {
                    at: last_position,
                    visible: true,
                    visibility_at: last_position,
                    name: name.clone(),
                    named_at: *named_at,
                }
            }
            (
                User::Verified {
                    at, name, named_at, ..
                },
                DomainEvent::PresenceVisibilitySet(PresenceVisibilitySet { visible, .. }),
            ) => {
                *self = User::Verified {
                    at: *at,
                    visible: *visible,
                    visibility_at: last_position,
                    name: name.clone(),
                    named_at: *named_at,
                }
            }
            (User::Verified { .. }, DomainEvent::UserRenamed(UserRenamed { name, .. })) => {
                if let User::Verified {
                    name: current,
                    named_at,
                    ..
                } = self
                {
                    *current = name.clone();
                    *named_at = last_position;
                }
            }
            // Events no decision makes in the present state change nothing.
            _ => {}
        }
    }
}

impl User {
    /// Whether the user exists and is verified: who may be found, added and chatted with.
    pub fn is_verified(&self) -> bool {
        matches!(self, User::Verified { .. })
    }

    fn register(&self, user_id: &UserId, name: &UserName) -> Result<Decision, Refusal> {
        if *self != User::Unregistered {
            return Err(Refusal::new(
                RefusalCode::Conflict,
                "user already registered",
            ));
        }
        Ok(Decision::Append(vec![UserRegistered {
            user_id: user_id.clone(),
            name: name.clone(),
        }
        .into()]))
    }

    fn rename(&self, user_id: &UserId, name: &UserName) -> Result<Decision, Refusal> {
        match self {
            User::Unregistered => Err(Refusal::new(RefusalCode::NotFound, "no such user")),
            User::Verified { .. } => Err(Refusal::new(
                RefusalCode::Conflict,
                "a verified user's name is not changed by signing up",
            )),
            User::Registered {
                name: current,
                last_position,
            } if current == name => Ok(Decision::AlreadyDone(Accepted {
                position: *last_position,
                ..Accepted::default()
            })),
            User::Registered { .. } => Ok(Decision::Append(vec![UserRenamed {
                user_id: user_id.clone(),
                name: name.clone(),
            }
            .into()])),
        }
    }

    fn verify(&self, user_id: &UserId) -> Result<Decision, Refusal> {
        match self {
            User::Unregistered => Err(Refusal::new(RefusalCode::NotFound, "no such user")),
            User::Verified { at, .. } => Ok(Decision::AlreadyDone(Accepted {
                position: *at,
                ..Accepted::default()
            })),
            User::Registered { .. } => Ok(Decision::Append(vec![UserVerified {
                user_id: user_id.clone(),
            }
            .into()])),
        }
    }

    /// Only a verified user has contacts to be seen by; choosing what is already chosen writes
    /// nothing.
    fn set_presence_visibility(
        &self,
        user_id: &UserId,
        visible: bool,
    ) -> Result<Decision, Refusal> {
        match self {
            User::Unregistered | User::Registered { .. } => {
                Err(Refusal::new(RefusalCode::NotFound, "no such user"))
            }
            User::Verified {
                visible: current,
                visibility_at,
                ..
            } if *current == visible => Ok(Decision::AlreadyDone(Accepted {
                position: *visibility_at,
                ..Accepted::default()
            })),
            User::Verified { .. } => Ok(Decision::Append(vec![PresenceVisibilitySet {
                user_id: user_id.clone(),
                visible,
            }
            .into()])),
        }
    }

    /// Only a verified user chooses their name; the name they already have writes nothing.
    fn change_name(&self, user_id: &UserId, name: &UserName) -> Result<Decision, Refusal> {
        match self {
            User::Unregistered | User::Registered { .. } => {
                Err(Refusal::new(RefusalCode::NotFound, "no such user"))
            }
            User::Verified {
                name: current,
                named_at,
                ..
            } if current == name => Ok(Decision::AlreadyDone(Accepted {
                position: *named_at,
                ..Accepted::default()
            })),
            User::Verified { .. } => Ok(Decision::Append(vec![UserRenamed {
                user_id: user_id.clone(),
                name: name.clone(),
            }
            .into()])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    fn ada() -> (UserId, UserName) {
        (
            UserId::parse("u1").unwrap(),
            UserName::parse("Ada").unwrap(),
        )
    }

    fn register(user_id: &UserId, name: &UserName) -> UserCommand {
        UserCommand::Register {
            user_id: user_id.clone(),
            name: name.clone(),
        }
    }

    fn rename(user_id: &UserId, name: &UserName) -> UserCommand {
        UserCommand::Rename {
            user_id: user_id.clone(),
            name: name.clone(),
        }
    }

    fn verify(user_id: &UserId) -> UserCommand {
        UserCommand::Verify {
            user_id: user_id.clone(),
        }
    }

    fn registered(user_id: &UserId, name: &UserName) -> DomainEvent {
        UserRegistered {
            user_id: user_id.clone(),
            name: name.clone(),
        }
        .into()
    }

    fn verified(user_id: &UserId) -> DomainEvent {
        UserVerified {
            user_id: user_id.clone(),
        }
        .into()
    }

    fn at(position: Position) -> Accepted {
        Accepted {
            position,
            ..Accepted::default()
        }
    }

    #[test]
    fn a_new_user_registers_once() {
        let (id, name) = ada();
        given::<User>([])
            .when(register(&id, &name))
            .then([registered(&id, &name)])
            .when(register(&id, &name))
            .then_refused(RefusalCode::Conflict)
            .when(verify(&id))
            .then([verified(&id)])
            .when(register(&id, &name))
            .then_refused(RefusalCode::Conflict);
    }

    #[test]
    fn renaming_is_for_registered_unverified_users_and_same_name_is_a_no_op() {
        let (id, name) = ada();
        let other = UserName::parse("Ada L").unwrap();
        given::<User>([])
            .when(rename(&id, &other))
            .then_refused(RefusalCode::NotFound);
        given::<User>([registered(&id, &name)])
            .when(rename(&id, &name))
            .then_already_done(at(1))
            .when(rename(&id, &other))
            .then([UserRenamed {
                user_id: id.clone(),
                name: other.clone(),
            }
            .into()])
            .when(rename(&id, &other))
            .then_already_done(at(2))
            .when(verify(&id))
            .then([verified(&id)])
            .when(rename(&id, &name))
            .then_refused(RefusalCode::Conflict);
    }

    #[test]
    fn verifying_twice_writes_once_and_verification_is_what_others_check() {
        let (id, name) = ada();
        given::<User>([])
            .when(verify(&id))
            .then_refused(RefusalCode::NotFound);
        let history = given::<User>([registered(&id, &name)]);
        assert!(!history.state().is_verified());
        let history = history
            .when(verify(&id))
            .then([verified(&id)])
            .when(verify(&id))
            .then_already_done(at(2));
        assert!(history.state().is_verified());
    }

    fn set_visibility(user_id: &UserId, visible: bool) -> UserCommand {
        UserCommand::SetPresenceVisibility {
            user_id: user_id.clone(),
            visible,
        }
    }

    fn visibility_set(user_id: &UserId, visible: bool) -> DomainEvent {
        PresenceVisibilitySet {
            user_id: user_id.clone(),
            visible,
        }
        .into()
    }

    #[test]
    fn only_a_verified_user_chooses_whether_they_are_seen_online() {
        let (id, name) = ada();
        given::<User>([])
            .when(set_visibility(&id, false))
            .then_refused(RefusalCode::NotFound);
        given::<User>([registered(&id, &name)])
            .when(set_visibility(&id, false))
            .then_refused(RefusalCode::NotFound);
    }

    #[test]
    fn a_user_is_visible_until_they_hide_and_a_repeated_choice_writes_nothing() {
        let (id, name) = ada();
        given::<User>([registered(&id, &name), verified(&id)])
            // Visible from verification on: showing again is already done, at the verification.
            .when(set_visibility(&id, true))
            .then_already_done(at(2))
            .when(set_visibility(&id, false))
            .then([visibility_set(&id, false)])
            .when(set_visibility(&id, false))
            .then_already_done(at(3))
            .when(set_visibility(&id, true))
            .then([visibility_set(&id, true)])
            .when(set_visibility(&id, true))
            .then_already_done(at(4))
            // Verification is answered as before, whatever was chosen since.
            .when(verify(&id))
            .then_already_done(at(2));
    }

    fn change_name(user_id: &UserId, name: &UserName) -> UserCommand {
        UserCommand::ChangeName {
            user_id: user_id.clone(),
            name: name.clone(),
        }
    }

    fn renamed(user_id: &UserId, name: &UserName) -> DomainEvent {
        UserRenamed {
            user_id: user_id.clone(),
            name: name.clone(),
        }
        .into()
    }

    #[test]
    fn only_a_verified_user_changes_their_name() {
        let (id, name) = ada();
        let other = UserName::parse("Ada L").unwrap();
        given::<User>([])
            .when(change_name(&id, &other))
            .then_refused(RefusalCode::NotFound);
        given::<User>([registered(&id, &name)])
            .when(change_name(&id, &other))
            .then_refused(RefusalCode::NotFound);
    }

    #[test]
    fn a_verified_user_renames_and_the_same_name_writes_nothing() {
        let (id, name) = ada();
        let other = UserName::parse("Ada L").unwrap();
        given::<User>([registered(&id, &name), verified(&id)])
            // The name from sign-up is theirs, as of its registration.
            .when(change_name(&id, &name))
            .then_already_done(at(1))
            .when(change_name(&id, &other))
            .then([renamed(&id, &other)])
            .when(change_name(&id, &other))
            .then_already_done(at(3))
            // Hiding keeps the name; the name keeps the choice.
            .when(set_visibility(&id, false))
            .then([visibility_set(&id, false)])
            .when(change_name(&id, &other))
            .then_already_done(at(3))
            .when(change_name(&id, &name))
            .then([renamed(&id, &name)])
            .when(set_visibility(&id, false))
            .then_already_done(at(4))
            // Signing up again still does not rename a verified user.
            .when(rename(&id, &other))
            .then_refused(RefusalCode::Conflict)
            .when(verify(&id))
            .then_already_done(at(2));
    }

    #[test]
    fn a_name_changed_before_verification_is_the_one_kept() {
        let (id, name) = ada();
        let other = UserName::parse("Ada L").unwrap();
        given::<User>([registered(&id, &name), renamed(&id, &other), verified(&id)])
            .when(change_name(&id, &other))
            .then_already_done(at(2));
    }
}
