//! The docker-compose dev stack and its image (infra/deploy/), checked against the code without a
//! Docker engine: every service's settings are read by the same `Settings::from_vars` the binaries
//! run, every backend URL names a service of the stack, nginx sends to exactly the gateways and is
//! the only way in, Prometheus scrapes every process where it serves /metrics, the alerts and the
//! dashboard ask only for metrics the code keeps, and the image builds exactly the binaries the
//! stack runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use infra::config::Settings;
use serde_yaml_ng::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The compose file with its anchors and merge keys (`<<:`) resolved, as Compose reads it.
fn compose() -> Value {
    let text = read(&deploy_dir().join("docker-compose.yml"));
    let mut value: Value = serde_yaml_ng::from_str(&text).expect("docker-compose.yml is YAML");
    value.apply_merge().expect("merge keys resolve");
    value
}

fn services(compose: &Value) -> BTreeMap<String, Value> {
    compose["services"]
        .as_mapping()
        .expect("a services mapping")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().expect("service names are strings").to_owned(),
                v.clone(),
            )
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A service's environment as the process would see it; `${VAR:?…}` takes `secret` (Compose
/// refuses to start without the variable, which is what the `:?` form is for).
fn environment(service: &Value, secret: &str) -> BTreeMap<String, String> {
    let Some(env) = service["environment"].as_mapping() else {
        return BTreeMap::new();
    };
    env.iter()
        .map(|(k, v)| {
            let key = k.as_str().expect("variable names are strings").to_owned();
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("{key}: unexpected value {other:?}"),
            };
            let value = if value.starts_with("${") {
                assert!(
                    value.contains(":?"),
                    "{key}: an interpolated setting must be required (${{VAR:?…}}), not defaulted"
                );
                secret.to_owned()
            } else {
                value
            };
            (key, value)
        })
        .collect()
}

/// The services built from the project's image, with the binary each runs.
fn ours(services: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    services
        .iter()
        .filter(|(_, s)| s["build"]["dockerfile"].as_str() == Some("infra/deploy/Dockerfile"))
        .map(|(name, s)| {
            let command = strings(&s["command"]);
            (name.clone(), command.first().cloned().unwrap_or_default())
        })
        .collect()
}

const SECRET: &str = "a-test-secret-of-more-than-thirty-two-bytes";

#[test]
fn every_service_of_ours_starts_with_settings_the_code_accepts() {
    let compose = compose();
    let services = services(&compose);
    let ours = ours(&services);
    let binaries: BTreeSet<&str> = ours.values().map(String::as_str).collect();
    assert_eq!(
        binaries,
        BTreeSet::from(["command-service", "gateway", "projection-service"]),
        "the stack runs each service of the topology"
    );
    for name in ours.keys() {
        let env = environment(&services[name], SECRET);
        let settings = Settings::from_vars(env.clone())
            .unwrap_or_else(|e| panic!("{name}: the service would refuse its settings: {e}"));
        // The production topology: NATS and PostgreSQL, never the all-in-one defaults.
        let nats = settings
            .nats_url
            .clone()
            .unwrap_or_else(|| panic!("{name}: no NATS_URL"));
        let nats_host = url_host(&nats);
        assert!(
            services.contains_key(&nats_host),
            "{name}: NATS_URL names {nats_host}, not a service"
        );
        assert!(
            strings(&services[&nats_host]["command"])
                .iter()
                .any(|a| a == "--jetstream" || a == "-js"),
            "{nats_host} runs without JetStream"
        );
        for (variable, url) in [
            ("EVENT_STORE_URL", &settings.event_store_url),
            ("DATABASE_URL", &settings.database_url),
        ] {
            assert!(
                url.starts_with("postgres://"),
                "{name}: {variable} is not PostgreSQL: {url}"
            );
            let pg = url_host(url);
            assert!(
                services.contains_key(&pg),
                "{name}: {variable} names {pg}, not a service"
            );
            let pg_env = environment(&services[&pg], SECRET);
            let expected = format!(
                "postgres://{user}:{password}@{pg}:5432/{db}",
                user = pg_env["POSTGRES_USER"],
                password = pg_env["POSTGRES_PASSWORD"],
                db = pg_env["POSTGRES_DB"],
            );
            assert_eq!(
                url, &expected,
                "{name}: {variable} does not match the {pg} service"
            );
        }
        // The drain may take 10 s; Compose must not kill the process before it has.
        let grace = services[name]["stop_grace_period"]
            .as_str()
            .unwrap_or("10s");
        let seconds: u64 = grace
            .trim_end_matches('s')
            .parse()
            .expect("stop_grace_period in seconds");
        assert!(
            seconds > 10,
            "{name}: stop_grace_period {grace} leaves no room for the 10 s drain"
        );
        // Every service of ours waits for what it needs, or is restarted until it is there.
        assert_eq!(
            services[name]["restart"].as_str(),
            Some("unless-stopped"),
            "{name}"
        );
        // And Compose can tell when it is ready: /ready on the port it answers it on.
        let port = if ours[name] == "gateway" {
            settings.port
        } else {
            settings
                .health_port
                .unwrap_or_else(|| panic!("{name}: no HEALTH_PORT, so no health check"))
        };
        let probe = strings(&services[name]["healthcheck"]["test"]);
        assert!(
            probe.iter().any(|a| a.ends_with(&format!(":{port}/ready"))),
            "{name}: the health check asks /ready on port {port}: {probe:?}"
        );
    }
}

#[test]
fn the_gateways_agree_and_sit_behind_the_proxy() {
    let compose = compose();
    let services = services(&compose);
    let gateways: Vec<String> = ours(&services)
        .into_iter()
        .filter(|(_, binary)| binary == "gateway")
        .map(|(name, _)| name)
        .collect();
    assert!(
        gateways.len() >= 2,
        "the stack shows several gateways: {gateways:?}"
    );
    let mut secrets = BTreeSet::new();
    let mut prefixes = BTreeSet::new();
    let mut upstreams = BTreeSet::new();
    for name in &gateways {
        let raw = &services[name]["environment"];
        secrets.insert(raw["AUTH_SECRET"].as_str().map(str::to_owned));
        let settings = Settings::from_vars(environment(&services[name], SECRET)).unwrap();
        prefixes.insert(settings.nats_prefix.clone());
        assert_eq!(
            settings.host, "0.0.0.0",
            "{name} must listen beyond its container"
        );
        assert!(
            settings.trust_proxy,
            "{name} is behind nginx: TRUST_PROXY=true"
        );
        assert!(
            settings.smtp_url.is_some(),
            "{name} needs SMTP_URL to send verification mail"
        );
        let mail = url_host(settings.smtp_url.as_deref().unwrap());
        assert!(
            services.contains_key(&mail),
            "{name}: SMTP_URL names {mail}, not a service"
        );
        upstreams.insert(format!("{name}:{}", settings.port));
    }
    assert_eq!(
        secrets.len(),
        1,
        "every gateway signs tokens with the same AUTH_SECRET"
    );
    assert!(
        secrets.iter().all(Option::is_some),
        "AUTH_SECRET is required, never committed"
    );
    assert_eq!(prefixes.len(), 1, "every gateway uses the same NATS_PREFIX");
    // A gateway starts once the services are ready (the projection-service's migrations made the
    // read-model tables it reads).
    for name in &gateways {
        for service in ["command-service", "projection-service"] {
            assert_eq!(
                services[name]["depends_on"][service]["condition"].as_str(),
                Some("service_healthy"),
                "{name} waits until {service} is ready"
            );
        }
    }

    // nginx forwards to exactly those gateways, WebSockets included, and outwaits engine.io's
    // ping interval and timeout (25 s + 20 s) on an idle socket.
    let nginx = read(&deploy_dir().join("nginx.conf"));
    let servers: BTreeSet<String> = nginx
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("server ").and_then(|s| s.strip_suffix(';')))
        .map(|s| {
            // Looked up again while nginx runs, so a recreated gateway is found.
            s.strip_suffix(" resolve")
                .unwrap_or_else(|| panic!("nginx: `server {s}` lacks `resolve`"))
                .to_owned()
        })
        .collect();
    assert_eq!(
        servers, upstreams,
        "nginx's upstream is the stack's gateways"
    );
    for directive in [
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        // Affinity that spreads clients behind one NAT, and moves few when a gateway changes.
        "hash $remote_addr$http_user_agent consistent;",
        "zone gateways",
        "resolver 127.0.0.11",
        // /metrics is never public.
        "location = /metrics {",
    ] {
        assert!(nginx.contains(directive), "nginx.conf lacks `{directive}`");
    }
    let connections: u64 = nginx
        .lines()
        .find_map(|l| l.trim().strip_prefix("worker_connections "))
        .and_then(|v| v.trim_end_matches(';').parse().ok())
        .expect("worker_connections is set");
    assert!(
        connections >= 20_000,
        "worker_connections {connections} is too few for tens of thousands of sockets"
    );
    // TRUST_PROXY is safe only when nginx is the sole way in: no gateway publishes a port.
    for name in &gateways {
        assert!(
            services[name]["ports"].is_null(),
            "{name} trusts X-Forwarded-For, so it must be reachable only through nginx"
        );
    }
    let read_timeout: u64 = nginx
        .lines()
        .find_map(|l| l.trim().strip_prefix("proxy_read_timeout "))
        .and_then(|v| v.trim_end_matches(';').trim_end_matches('s').parse().ok())
        .expect("proxy_read_timeout is set in seconds");
    assert!(
        read_timeout > 45,
        "proxy_read_timeout {read_timeout}s would cut idle sockets"
    );
    let lb = services
        .iter()
        .find(|(_, s)| {
            strings(&s["volumes"])
                .iter()
                .any(|v| v.starts_with("./nginx.conf:"))
        })
        .map(|(name, _)| name.clone())
        .expect("a service runs nginx with nginx.conf");
    for name in &gateways {
        assert_eq!(
            services[&lb]["depends_on"][name.as_str()]["condition"].as_str(),
            Some("service_healthy"),
            "{lb} waits until {name} is ready"
        );
    }
}

#[test]
fn the_gateways_share_one_bucket_that_the_stack_creates() {
    let compose = compose();
    let services = services(&compose);
    let init = &services["minio-init"];
    let script = strings(&init["entrypoint"]).join(" ");
    let mut buckets = BTreeSet::new();
    for (name, binary) in ours(&services) {
        if binary != "gateway" {
            continue;
        }
        let raw = &services[&name]["environment"];
        let settings = Settings::from_vars(environment(&services[&name], SECRET)).unwrap();
        let bucket = settings
            .files_url
            .strip_prefix("s3://")
            .unwrap_or_else(|| panic!("{name}: FILES_URL is not s3://…"))
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            script.contains(&format!("mc mb --ignore-existing local/{bucket}")),
            "minio-init creates {bucket}: {script}"
        );
        buckets.insert(bucket);
        let endpoint = raw["AWS_ENDPOINT"].as_str().expect("AWS_ENDPOINT");
        assert!(
            services.contains_key(&url_host(endpoint)),
            "{name}: AWS_ENDPOINT names {endpoint}, not a service"
        );
        assert_eq!(
            raw["AWS_ALLOW_HTTP"].as_str(),
            Some("true"),
            "{name}: MinIO is plain HTTP"
        );
        for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            assert!(raw[key].as_str().is_some(), "{name}: {key}");
        }
        assert_eq!(
            services[&name]["depends_on"]["minio-init"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{name} starts once the bucket exists"
        );
    }
    assert_eq!(buckets.len(), 1, "every gateway uses the same bucket");
    assert_eq!(
        init["depends_on"]["minio"]["condition"].as_str(),
        Some("service_healthy")
    );
}

#[test]
fn the_image_builds_what_the_stack_runs_with_a_toolchain_the_workspace_accepts() {
    let dockerfile = read(&deploy_dir().join("Dockerfile"));
    let compose = compose();
    let services = services(&compose);
    let run: BTreeSet<String> = ours(&services).into_values().collect();
    let build_line = dockerfile
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("the image runs cargo build");
    assert!(
        build_line.contains("--locked"),
        "the image builds the locked dependencies"
    );
    let built: BTreeSet<String> = build_line
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "-p")
        .map(|w| w[1].to_owned())
        .collect();
    assert_eq!(
        built, run,
        "the image builds exactly the binaries the stack runs"
    );
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for binary in &built {
        assert!(
            workspace.join(binary).join("src/main.rs").exists(),
            "{binary} is not a binary of the workspace"
        );
        assert!(
            dockerfile.contains(&format!("target/release/{binary}")),
            "the image copies {binary}"
        );
    }
    // The builder's Rust is pinned, and new enough for the workspace's rust-version.
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the builder is a rust image");
    let builder = version(image.split('-').next().unwrap_or(image));
    let manifest = read(&workspace.join("Cargo.toml"));
    let wanted = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| version(v.trim_matches('"')))
        .expect("the workspace states its rust-version");
    assert!(builder.len() >= 2, "rust:{image} is not a pinned version");
    assert!(
        builder >= wanted,
        "rust:{image} is older than the workspace's rust-version"
    );
    // Secrets and build output stay out of the build context.
    let ignore = read(&workspace.join(".dockerignore"));
    for entry in ["target/", "**/.env"] {
        assert!(
            ignore.lines().any(|l| l.trim() == entry),
            ".dockerignore lacks {entry}"
        );
    }
}

#[test]
fn the_image_caches_dependencies_and_the_stack_documents_its_secrets() {
    let dockerfile = read(&deploy_dir().join("Dockerfile"));
    for step in ["cargo chef prepare", "cargo chef cook --release --locked"] {
        assert!(dockerfile.contains(step), "the image lacks `{step}`");
    }
    let example = read(&deploy_dir().join(".env.example"));
    let text = read(&deploy_dir().join("docker-compose.yml"));
    // Every variable Compose requires (`${VAR:?…}`) is in the example, unset.
    for required in text.split("${").skip(1).filter_map(|r| r.split_once(":?")) {
        let variable = required.0;
        assert!(
            example.lines().any(|l| l == format!("{variable}=")),
            ".env.example lacks {variable}= (empty)"
        );
    }
}

/// Metric names in a PromQL expression: `chat_…` words, without the histogram series suffixes.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("chat_"))
        .map(|w| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| w.strip_suffix(suffix))
                .unwrap_or(w)
                .to_owned()
        })
        .collect()
}

#[test]
fn monitoring_scrapes_every_process_and_asks_only_for_kept_metrics() {
    use infra::telemetry::names;
    let compose = compose();
    let services = services(&compose);
    for name in ["prometheus", "grafana"] {
        assert_eq!(
            strings(&services[name]["profiles"]),
            vec!["monitoring".to_owned()],
            "{name} joins only with the monitoring profile"
        );
    }
    // Where each process of ours serves /metrics: a gateway on METRICS_PORT (off its public
    // port), a service on HEALTH_PORT.
    let mut expected = BTreeSet::new();
    for (name, binary) in ours(&services) {
        let settings = Settings::from_vars(environment(&services[&name], SECRET)).unwrap();
        assert!(settings.telemetry.metrics, "{name} keeps metrics");
        let port = if binary == "gateway" {
            settings
                .telemetry
                .metrics_port
                .unwrap_or_else(|| panic!("{name}: no METRICS_PORT"))
        } else {
            settings.health_port.expect("a health port")
        };
        expected.insert(format!("{name}:{port}"));
    }
    let prometheus: Value =
        serde_yaml_ng::from_str(&read(&deploy_dir().join("prometheus/prometheus.yml"))).unwrap();
    let scraped: BTreeSet<String> = prometheus["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .flat_map(|job| {
            job["static_configs"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|c| strings(&c["targets"]))
        .collect();
    assert_eq!(
        scraped, expected,
        "Prometheus scrapes every process of ours"
    );
    for rule_file in strings(&prometheus["rule_files"]) {
        let file = rule_file
            .strip_prefix("/etc/prometheus/")
            .expect("rule files are mounted from ./prometheus");
        assert!(
            deploy_dir().join("prometheus").join(file).exists(),
            "{rule_file} is not in infra/deploy/prometheus"
        );
    }

    let kept: BTreeSet<String> = names::ALL.iter().map(|n| (*n).to_owned()).collect();
    let alerts: Value =
        serde_yaml_ng::from_str(&read(&deploy_dir().join("prometheus/alerts.yml"))).unwrap();
    let mut alerted = BTreeSet::new();
    for group in alerts["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let expr = rule["expr"].as_str().expect("an expr");
            let used = metrics_in(expr);
            assert!(used.is_subset(&kept), "{expr}: unknown {:?}", &used - &kept);
            alerted.extend(rule["alert"].as_str().map(str::to_owned));
        }
    }
    for must in [
        "ProjectionStalled",
        "ProjectionLagging",
        "RelayStalled",
        "NatsDown",
        "EventStoreErrors",
        "HttpServerErrors",
    ] {
        assert!(alerted.contains(must), "alerts.yml lacks {must}");
    }

    let dashboard: serde_json::Value = serde_json::from_str(&read(
        &deploy_dir().join("grafana/dashboards/expresschat.json"),
    ))
    .expect("the dashboard is JSON");
    let mut shown = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("an expr");
            let used = metrics_in(expr);
            assert!(used.is_subset(&kept), "{expr}: unknown {:?}", &used - &kept);
            shown.extend(used);
        }
    }
    assert_eq!(shown, kept, "the dashboard shows every metric");
}

fn version(text: &str) -> Vec<u64> {
    text.split('.')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("not a version: {text}"))
        })
        .collect()
}

/// The host of `scheme://[user[:password]@]host[:port][/…]`.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.split(':').next().unwrap_or(host_port).to_owned()
}
