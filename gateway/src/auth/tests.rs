//! The account rules against a real (temporary) SQLite database.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events_schema::{UserId, UserName};
use infra::db::Database;

use super::*;

struct Fixture {
    auth: AuthService,
    offset_ms: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
    _postgres: Option<infra::testing::TempPostgres>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = infra::db::sqlite_url(&dir.path().join("accounts.db"));
    fixture_on(&url, dir, None).await
}

/// The accounts in a fresh PostgreSQL database.
async fn postgres_fixture() -> Fixture {
    let pg = infra::testing::TempPostgres::create("gateway_auth_test").await;
    fixture_on(&pg.url(), tempfile::tempdir().unwrap(), Some(pg)).await
}

async fn fixture_on(
    url: &str,
    dir: tempfile::TempDir,
    postgres: Option<infra::testing::TempPostgres>,
) -> Fixture {
    let db = Database::connect(url).await.unwrap();
    let offset_ms = Arc::new(AtomicI64::new(0));
    let offset = offset_ms.clone();
    let auth = AuthService::new(
        db,
        &[9u8; 32],
        Duration::from_secs(60),
        Duration::from_secs(3600),
    )
    .await
    .unwrap()
    .with_clock(move || Utc::now() + chrono::Duration::milliseconds(offset.load(Ordering::SeqCst)));
    Fixture {
        auth,
        offset_ms,
        _dir: dir,
        _postgres: postgres,
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn name(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

fn password(s: &str) -> Password {
    Password::parse(s).unwrap()
}

fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

async fn signed_up(f: &Fixture, address: &str) -> (UserId, String) {
    match f
        .auth
        .signup(&name("Ada"), &email(address), &password("password1"))
        .await
        .unwrap()
    {
        SignupOutcome::Created { user_id, code } => (user_id, code),
        SignupOutcome::Replaced { .. } => panic!("expected a new account"),
    }
}

#[tokio::test]
async fn a_code_verifies_once_and_the_account_can_log_in() {
    let f = fixture().await;
    let (user_id, code) = signed_up(&f, "ada@example.com").await;
    assert!(matches!(
        f.auth.login(&email("ada@example.com"), "password1").await,
        Err(AuthError::NotVerified)
    ));
    let signed_in = f
        .auth
        .verify(&email("ADA@example.com"), &code)
        .await
        .unwrap();
    assert_eq!(signed_in.user_id, user_id);
    assert!(matches!(
        f.auth.verify(&email("ada@example.com"), &code).await,
        Err(AuthError::InvalidCode)
    ));
    let login = f
        .auth
        .login(&email("ada@example.com"), "password1")
        .await
        .unwrap();
    assert_eq!(login.name.as_str(), "Ada");
    assert!(matches!(
        f.auth
            .signup(
                &name("Ada"),
                &email("ada@example.com"),
                &password("password2")
            )
            .await,
        Err(AuthError::AlreadyExists)
    ));
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_refusal() {
    let f = fixture().await;
    let (_, code) = signed_up(&f, "ada@example.com").await;
    f.auth
        .verify(&email("ada@example.com"), &code)
        .await
        .unwrap();
    assert!(matches!(
        f.auth.login(&email("ada@example.com"), "password2").await,
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        f.auth.login(&email("bob@example.com"), "password1").await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let f = fixture().await;
    let (_, code) = signed_up(&f, "ada@example.com").await;
    f.offset_ms
        .store(CODE_TTL.as_millis() as i64 + 1, Ordering::SeqCst);
    assert!(matches!(
        f.auth.verify(&email("ada@example.com"), &code).await,
        Err(AuthError::InvalidCode)
    ));
    // A resend gives a code that works from the new "now".
    let resent = f
        .auth
        .resend(&email("ada@example.com"))
        .await
        .unwrap()
        .unwrap();
    f.auth
        .verify(&email("ada@example.com"), &resent.code)
        .await
        .unwrap();
}

#[tokio::test]
async fn five_wrong_codes_void_the_code_and_resend_replaces_it() {
    let f = fixture().await;
    let (_, code) = signed_up(&f, "ada@example.com").await;
    for _ in 0..5 {
        assert!(matches!(
            f.auth
                .verify(&email("ada@example.com"), &wrong(&code))
                .await,
            Err(AuthError::InvalidCode)
        ));
    }
    assert!(matches!(
        f.auth.verify(&email("ada@example.com"), &code).await,
        Err(AuthError::InvalidCode)
    ));
    let resent = f
        .auth
        .resend(&email("ada@example.com"))
        .await
        .unwrap()
        .unwrap();
    let first = resent.code.clone();
    let second = f
        .auth
        .resend(&email("ada@example.com"))
        .await
        .unwrap()
        .unwrap()
        .code;
    if first != second {
        assert!(matches!(
            f.auth.verify(&email("ada@example.com"), &first).await,
            Err(AuthError::InvalidCode)
        ));
    }
    f.auth
        .verify(&email("ada@example.com"), &second)
        .await
        .unwrap();
    assert!(
        f.auth
            .resend(&email("ada@example.com"))
            .await
            .unwrap()
            .is_none(),
        "verified: nothing to resend"
    );
    assert!(f
        .auth
        .resend(&email("nobody@example.com"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn signing_up_again_unverified_replaces_password_and_name() {
    let f = fixture().await;
    let (user_id, first_code) = signed_up(&f, "ada@example.com").await;
    let again = f
        .auth
        .signup(
            &name("Ada L"),
            &email("ada@example.com"),
            &password("password2"),
        )
        .await
        .unwrap();
    let SignupOutcome::Replaced {
        user_id: same,
        code,
        renamed,
        ..
    } = again
    else {
        panic!("expected a replacement")
    };
    assert_eq!(same, user_id);
    assert_eq!(renamed.unwrap().as_str(), "Ada L");
    if first_code != code {
        assert!(f
            .auth
            .verify(&email("ada@example.com"), &first_code)
            .await
            .is_err());
    }
    f.auth
        .verify(&email("ada@example.com"), &code)
        .await
        .unwrap();
    assert!(f
        .auth
        .login(&email("ada@example.com"), "password2")
        .await
        .is_ok());
    assert!(f
        .auth
        .login(&email("ada@example.com"), "password1")
        .await
        .is_err());
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let f = fixture().await;
    let (_, code) = signed_up(&f, "ada@example.com").await;
    let signed_in = f
        .auth
        .verify(&email("ada@example.com"), &code)
        .await
        .unwrap();
    let first = signed_in.tokens.refresh.clone();
    let next = f.auth.refresh(&first).await.unwrap();
    assert_ne!(next.refresh, first);
    assert!(f.auth.session_active(&signed_in.session_id).await.unwrap());
    // The spent token again: the session is revoked, and the rotated token dies with it.
    match f.auth.refresh(&first).await {
        Err(AuthError::RefreshReused { session_id }) => {
            assert_eq!(session_id, signed_in.session_id)
        }
        other => panic!("expected reuse detection, got {:?}", other.err()),
    }
    assert!(!f.auth.session_active(&signed_in.session_id).await.unwrap());
    assert!(matches!(
        f.auth.refresh(&next.refresh).await,
        Err(AuthError::InvalidRefresh)
    ));
    assert!(
        f.auth.authenticate(Some(&next.access), None).await.is_err(),
        "revoked session's access token"
    );
    assert!(matches!(
        f.auth.refresh("made-up").await,
        Err(AuthError::InvalidRefresh)
    ));
}

#[tokio::test]
async fn handshake_credentials() {
    let f = fixture().await;
    let (user_id, code) = signed_up(&f, "ada@example.com").await;
    let s = f
        .auth
        .verify(&email("ada@example.com"), &code)
        .await
        .unwrap();
    let by_access = f
        .auth
        .authenticate(Some(&s.tokens.access), None)
        .await
        .unwrap();
    assert_eq!(by_access.user_id, user_id);
    assert_eq!(by_access.name, "Ada");
    assert!(by_access.fresh_access.is_none());
    // Refresh only: a fresh access token, and the refresh token is not spent.
    let by_refresh = f
        .auth
        .authenticate(None, Some(&s.tokens.refresh))
        .await
        .unwrap();
    let fresh = by_refresh.fresh_access.unwrap();
    assert!(f.auth.check_access_signature(&fresh).is_ok());
    assert!(f
        .auth
        .authenticate(None, Some(&s.tokens.refresh))
        .await
        .is_ok());
    // A tampered access token is refused even with a good refresh token.
    let tampered = format!("{}x", s.tokens.access);
    assert!(f
        .auth
        .authenticate(Some(&tampered), Some(&s.tokens.refresh))
        .await
        .is_err());
    // The refresh token is never an access token.
    assert!(f
        .auth
        .authenticate(Some(&s.tokens.refresh), None)
        .await
        .is_err());
    // Logout revokes.
    assert_eq!(
        f.auth.logout(&s.tokens.refresh).await,
        Some(s.session_id.clone())
    );
    assert!(f
        .auth
        .authenticate(Some(&s.tokens.access), None)
        .await
        .is_err());
    assert!(f
        .auth
        .authenticate(None, Some(&s.tokens.refresh))
        .await
        .is_err());
    assert_eq!(f.auth.logout("unknown").await, None);
}

#[tokio::test]
async fn emails_are_looked_up_in_one_query() {
    let f = fixture().await;
    let (a, _) = signed_up(&f, "ada@example.com").await;
    let (b, _) = signed_up(&f, "bob@example.com").await;
    let found = f
        .auth
        .email_of(&[a.clone(), b.clone(), UserId::parse("nobody").unwrap()])
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[&a], "ada@example.com");
    assert_eq!(found[&b], "bob@example.com");
}

/// The stored count of tries at `address`'s live code.
async fn tries(f: &Fixture, address: &str) -> i64 {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT failures FROM verification_codes JOIN accounts USING (user_id) WHERE email = $1",
    )
    .bind(address)
    .fetch_one(&f.auth.db.pool)
    .await
    .unwrap();
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_codes_each_take_a_try() {
    parallel_wrong_codes(fixture().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_codes_each_take_a_try_on_postgresql() {
    parallel_wrong_codes(postgres_fixture().await).await;
}

/// Twenty wrong guesses at once: each is refused, only five are compared (the others find no
/// tries left), and the right code comes too late.
async fn parallel_wrong_codes(f: Fixture) {
    let f = Arc::new(f);
    let (_, code) = signed_up(&f, "ada@example.com").await;
    let start = Arc::new(tokio::sync::Barrier::new(20));
    let guesses: Vec<_> = (0..20)
        .map(|_| {
            let (f, start, guess) = (f.clone(), start.clone(), wrong(&code));
            tokio::spawn(async move {
                start.wait().await;
                f.auth.verify(&email("ada@example.com"), &guess).await
            })
        })
        .collect();
    for guess in guesses {
        assert!(matches!(guess.await.unwrap(), Err(AuthError::InvalidCode)));
    }
    assert_eq!(
        tries(&f, "ada@example.com").await,
        MAX_CODE_FAILURES,
        "no more than five guesses were compared"
    );
    assert!(matches!(
        f.auth.verify(&email("ada@example.com"), &code).await,
        Err(AuthError::InvalidCode)
    ));
}

#[tokio::test]
async fn a_spent_refresh_token_at_a_handshake_revokes_the_session() {
    let f = fixture().await;
    let (_, code) = signed_up(&f, "ada@example.com").await;
    let s = f
        .auth
        .verify(&email("ada@example.com"), &code)
        .await
        .unwrap();
    let first = s.tokens.refresh.clone();
    let next = f.auth.refresh(&first).await.unwrap();
    // A valid access token is enough: the refresh token beside it is not looked at.
    assert!(f
        .auth
        .authenticate(Some(&next.access), Some(&first))
        .await
        .is_ok());
    assert!(f.auth.session_active(&s.session_id).await.unwrap());
    // Needed (no access token, or an expired one), the spent token is the theft signal.
    match f.auth.authenticate(None, Some(&first)).await {
        Err(AuthError::RefreshReused { session_id }) => assert_eq!(session_id, s.session_id),
        other => panic!("expected reuse detection, got {:?}", other.err()),
    }
    assert!(!f.auth.session_active(&s.session_id).await.unwrap());
    assert!(matches!(
        f.auth.authenticate(None, Some(&next.refresh)).await,
        Err(AuthError::InvalidRefresh)
    ));
    assert!(f.auth.authenticate(Some(&next.access), None).await.is_err());
    assert!(matches!(
        f.auth.refresh(&next.refresh).await,
        Err(AuthError::InvalidRefresh)
    ));
    // A token nobody issued is only refused.
    assert!(matches!(
        f.auth.authenticate(None, Some("made-up")).await,
        Err(AuthError::InvalidRefresh)
    ));
}

#[tokio::test]
async fn whether_the_registration_is_recorded_follows_the_account() {
    let f = fixture().await;
    let (user_id, _) = signed_up(&f, "ada@example.com").await;
    async fn again(f: &Fixture) -> SignupOutcome {
        f.auth
            .signup(
                &name("Ada"),
                &email("ada@example.com"),
                &password("password2"),
            )
            .await
            .unwrap()
    }
    assert!(matches!(
        again(&f).await,
        SignupOutcome::Replaced {
            registered: false,
            ..
        }
    ));
    f.auth.registration_recorded(&user_id).await.unwrap();
    let SignupOutcome::Replaced {
        registered: true,
        code,
        ..
    } = again(&f).await
    else {
        panic!("expected a replacement noted as registered")
    };
    let s = f
        .auth
        .verify(&email("ada@example.com"), &code)
        .await
        .unwrap();
    assert!(s.registered);
}
