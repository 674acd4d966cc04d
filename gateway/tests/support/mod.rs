//! Starts the real server, exactly as `main` does, on a random port with its own data directory.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway::Application;
use infra::config::Settings;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test server in `data_dir`, plus `extra` (e.g. `("AUTH_RATE_LIMIT", "2/min")`).
pub fn settings(data_dir: &Path, extra: &[(&str, &str)]) -> Settings {
    let mut vars = vec![
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("AUTH_RATE_LIMIT".to_owned(), "1000/min".to_owned()),
        ("PUBLIC_URL".to_owned(), "http://localhost:3000".to_owned()),
    ];
    for (k, v) in extra {
        vars.retain(|(key, _)| key != k);
        vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    Settings::from_vars(vars).expect("test settings are valid")
}

pub async fn spawn(data_dir: &Path, extra: &[(&str, &str)]) -> TestApp {
    let app = Application::build(settings(data_dir, extra))
        .await
        .expect("the server builds");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    TestApp {
        addr,
        data_dir: data_dir.to_owned(),
        http,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        let response = self
            .http
            .get(self.url(path))
            .header("accept", "application/json")
            .send()
            .await
            .expect("request");
        read(response).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// The newest verification code mailed to `email` (outbox mode).
    pub fn code_for(&self, email: &str) -> String {
        let outbox = self.data_dir.join("outbox");
        let mut mails: Vec<_> = std::fs::read_dir(&outbox)
            .expect("outbox exists")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        mails.sort();
        for path in mails.iter().rev() {
            let text = std::fs::read_to_string(path).expect("mail is text");
            let unfolded = text.replace("=\r\n", "").replace("=\n", "");
            if !unfolded.contains(email) && !unfolded.contains(&email.replace('@', "%40")) {
                continue;
            }
            if let Some(code) = find_code(&unfolded) {
                return code;
            }
        }
        panic!("no verification mail for {email} in {}", outbox.display());
    }

    /// Signs up, verifies with the mailed code; returns the verify body.
    pub async fn verified_user(&self, name: &str, email: &str, password: &str) -> Value {
        let (status, body, _) = self
            .post(
                "/signup",
                json!({"name": name, "email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "signup: {body}");
        let code = self.code_for(email);
        let (status, body, _) = self
            .get(&format!(
                "/verify?email={}&token={code}&source=app",
                email.replace('@', "%40")
            ))
            .await;
        assert_eq!(status, 200, "verify: {body}");
        body
    }
}

/// The six digits after `token=` (`token=3D` when quoted-printable).
fn find_code(text: &str) -> Option<String> {
    for (at, _) in text.match_indices("token=") {
        let rest = &text[at + "token=".len()..];
        let rest = rest.strip_prefix("3D").unwrap_or(rest);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if digits.len() == 6 {
            return Some(digits);
        }
    }
    None
}

async fn read(response: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, headers)
}

/// Every `Set-Cookie` line of a response.
pub fn set_cookies(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}
