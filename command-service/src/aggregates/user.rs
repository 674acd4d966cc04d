//! The user aggregate (stream `user-<id>`): registration, renaming before verification,
//! verification.

use events_schema::events::{UserRegistered, UserRenamed, UserVerified};
use events_schema::{
    Accepted, DomainEvent, Position, RecordedEvent, RefusalCode, UserId, UserName,
};

use super::{Aggregate, Decision, Refusal};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub registered: bool,
    pub verified: bool,
    pub name: Option<UserName>,
    /// Position of the `UserVerified` event, for idempotent repeats.
    pub verified_at: Option<Position>,
    pub last_position: Position,
}

impl Aggregate for User {
    fn apply(&mut self, event: &DomainEvent, recorded: &RecordedEvent) {
        self.last_position = recorded.position;
        match event {
            DomainEvent::UserRegistered(e) => {
                self.registered = true;
                self.name = Some(e.name.clone());
            }
            DomainEvent::UserRenamed(e) => self.name = Some(e.name.clone()),
            DomainEvent::UserVerified(_) => {
                self.verified = true;
                self.verified_at = Some(recorded.position);
            }
            _ => {}
        }
    }
}

impl User {
    pub fn register(&self, user_id: &UserId, name: &UserName) -> Result<Decision, Refusal> {
        if self.registered {
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

    pub fn rename(&self, user_id: &UserId, name: &UserName) -> Result<Decision, Refusal> {
        if !self.registered {
            return Err(Refusal::new(RefusalCode::NotFound, "no such user"));
        }
        if self.verified {
            return Err(Refusal::new(
                RefusalCode::Conflict,
                "a verified user's name is not changed by signing up",
            ));
        }
        if self.name.as_ref() == Some(name) {
            return Ok(Decision::AlreadyDone(Accepted {
                position: self.last_position,
                ..Accepted::default()
            }));
        }
        Ok(Decision::Append(vec![UserRenamed {
            user_id: user_id.clone(),
            name: name.clone(),
        }
        .into()]))
    }

    pub fn verify(&self, user_id: &UserId) -> Result<Decision, Refusal> {
        if !self.registered {
            return Err(Refusal::new(RefusalCode::NotFound, "no such user"));
        }
        if let Some(position) = self.verified_at {
            return Ok(Decision::AlreadyDone(Accepted {
                position,
                ..Accepted::default()
            }));
        }
        Ok(Decision::Append(vec![UserVerified {
            user_id: user_id.clone(),
        }
        .into()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::testing::given;

    fn ada() -> (UserId, UserName) {
        (
            UserId::parse("u1").unwrap(),
            UserName::parse("Ada").unwrap(),
        )
    }

    #[test]
    fn a_new_user_registers_once() {
        let (id, name) = ada();
        let user: User = given(&[]);
        assert_eq!(
            user.register(&id, &name),
            Ok(Decision::Append(vec![UserRegistered {
                user_id: id.clone(),
                name: name.clone()
            }
            .into()]))
        );
        let user: User = given(&[UserRegistered {
            user_id: id.clone(),
            name: name.clone(),
        }
        .into()]);
        assert_eq!(
            user.register(&id, &name).unwrap_err().code,
            RefusalCode::Conflict
        );
    }

    #[test]
    fn renaming_is_for_registered_unverified_users_and_same_name_is_a_no_op() {
        let (id, name) = ada();
        let other = UserName::parse("Ada L").unwrap();
        assert_eq!(
            given::<User>(&[]).rename(&id, &other).unwrap_err().code,
            RefusalCode::NotFound
        );
        let registered: User = given(&[UserRegistered {
            user_id: id.clone(),
            name: name.clone(),
        }
        .into()]);
        assert!(matches!(
            registered.rename(&id, &name),
            Ok(Decision::AlreadyDone(_))
        ));
        assert_eq!(
            registered.rename(&id, &other),
            Ok(Decision::Append(vec![UserRenamed {
                user_id: id.clone(),
                name: other.clone()
            }
            .into()]))
        );
        let verified: User = given(&[
            UserRegistered {
                user_id: id.clone(),
                name,
            }
            .into(),
            UserVerified {
                user_id: id.clone(),
            }
            .into(),
        ]);
        assert_eq!(
            verified.rename(&id, &other).unwrap_err().code,
            RefusalCode::Conflict
        );
    }

    #[test]
    fn verifying_twice_writes_once() {
        let (id, name) = ada();
        assert_eq!(
            given::<User>(&[]).verify(&id).unwrap_err().code,
            RefusalCode::NotFound
        );
        let registered: User = given(&[UserRegistered {
            user_id: id.clone(),
            name: name.clone(),
        }
        .into()]);
        assert_eq!(
            registered.verify(&id),
            Ok(Decision::Append(vec![UserVerified {
                user_id: id.clone()
            }
            .into()]))
        );
        let verified: User = given(&[
            UserRegistered {
                user_id: id.clone(),
                name,
            }
            .into(),
            UserVerified {
                user_id: id.clone(),
            }
            .into(),
        ]);
        assert_eq!(
            verified.verify(&id),
            Ok(Decision::AlreadyDone(Accepted {
                position: 2,
                ..Accepted::default()
            }))
        );
    }
}
