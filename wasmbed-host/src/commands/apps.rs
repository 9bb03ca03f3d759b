//! Applications of a fleet (docs/FLEET.md): `apply -f FILE`, `get apps|devices|gateways`,
//! `describe app NAME`, `rollout status NAME`, `delete app NAME`. These talk to the fleet's
//! NATS servers directly (`--fleet` is required), not through a gateway.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use wasmbed_api::app::{AppSummary, Application, ModuleKind};
use wasmbed_gateway::fleet::apps::{self, AppStore};
use wasmbed_gateway::fleet::FleetClient;

use super::Report;
use crate::error::HostError;

/// `apply` arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The application file (`.toml`, `.yaml`/`.yml` or `.json`).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
}

/// What `get` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetWhat {
    /// Applications with their rollout state.
    #[value(alias = "app", alias = "applications")]
    Apps,
    /// Devices of every gateway.
    #[value(alias = "device")]
    Devices,
    /// Gateways.
    #[value(alias = "gateway")]
    Gateways,
}

/// `get` arguments.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to list.
    #[arg(value_enum)]
    pub what: GetWhat,
}

/// The kind `describe` and `delete` take (only applications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppKind {
    /// An application.
    #[value(alias = "application", alias = "apps")]
    App,
}

/// `describe app NAME` / `delete app NAME`.
#[derive(Debug, Args)]
pub struct NamedApp {
    /// `app`.
    #[arg(value_enum)]
    pub kind: AppKind,
    /// The application's name.
    pub name: String,
}

/// `rollout` subcommands.
#[derive(Debug, Subcommand)]
pub enum RolloutCmd {
    /// Wait until the application runs its current generation on every targeted device
    /// (exit 0), or until --timeout (exit 6).
    Status {
        /// The application's name.
        name: String,
    },
}

/// `rollout` arguments.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// What to do.
    #[command(subcommand)]
    pub cmd: RolloutCmd,
}

/// One of the application commands.
#[derive(Debug)]
pub enum AppCommand<'a> {
    /// `apply`.
    Apply(&'a ApplyArgs),
    /// `get`.
    Get(&'a GetArgs),
    /// `describe`.
    Describe(&'a NamedApp),
    /// `delete`.
    Delete(&'a NamedApp),
    /// `rollout`.
    Rollout(&'a RolloutArgs),
}

impl AppCommand<'_> {
    /// The command's name in JSON output.
    pub fn name(&self) -> &'static str {
        match self {
            AppCommand::Apply(_) => "apply",
            AppCommand::Get(_) => "get",
            AppCommand::Describe(_) => "describe",
            AppCommand::Delete(_) => "delete",
            AppCommand::Rollout(_) => "rollout",
        }
    }
}

/// Default deadline of `rollout status`.
pub const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(300);

fn fleet_err(e: wasmbed_gateway::fleet::FleetError) -> HostError {
    match e {
        wasmbed_gateway::fleet::FleetError::Config(m) => HostError::Usage(m),
        wasmbed_gateway::fleet::FleetError::Connect { url, message } => HostError::Unreachable {
            addr: url,
            reason: message,
        },
        other => HostError::Protocol(other.to_string()),
    }
}

fn fleet_auth() -> Result<wasmbed_gateway::fleet::Auth, HostError> {
    let mut auth = wasmbed_gateway::fleet::Auth::default();
    if let Some(p) = std::env::var_os("WASMBED_FLEET_TOKEN_FILE") {
        let t = std::fs::read_to_string(&p).map_err(|source| HostError::ReadFile {
            path: PathBuf::from(&p).display().to_string(),
            source,
        })?;
        auth.token = Some(t.trim().to_string());
    }
    auth.creds_file = std::env::var_os("WASMBED_FLEET_CREDS").map(Into::into);
    Ok(auth)
}

/// Runs an application command against the fleet at `fleet` (`None`: a usage error).
pub fn run(cmd: AppCommand<'_>, fleet: Option<&str>, timeout: Option<Duration>) -> Report {
    let name = cmd.name();
    let Some(url) = fleet else {
        return Report::from_error(
            name,
            HostError::Usage(format!(
                "`{name}` works on a fleet: pass --fleet nats://HOST:PORT or set WASMBED_FLEET (docs/FLEET.md)"
            )),
        );
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Report::from_error(name, HostError::Internal(e.to_string())),
    };
    let out = rt.block_on(async {
        let auth = fleet_auth()?;
        let client = tokio::time::timeout(
            crate::fleet::CONNECT_TIMEOUT,
            FleetClient::connect(url, &auth),
        )
        .await
        .map_err(|_| HostError::Unreachable {
            addr: url.to_string(),
            reason: format!("no answer within {:?}", crate::fleet::CONNECT_TIMEOUT),
        })?
        .map_err(fleet_err)?;
        let js = client.jetstream();
        let store = AppStore::open(&js, 1).await.map_err(fleet_err)?;
        match cmd {
            AppCommand::Apply(a) => apply(&store, &a.file).await,
            AppCommand::Get(g) => get(&client, &store, g.what).await,
            AppCommand::Describe(n) => describe(&client, &store, &n.name).await,
            AppCommand::Delete(n) => delete(&store, &n.name).await,
            AppCommand::Rollout(r) => match &r.cmd {
                RolloutCmd::Status { name } => {
                    rollout_status(&client, &store, name, timeout.unwrap_or(ROLLOUT_TIMEOUT)).await
                }
            },
        }
    });
    match out {
        Ok((mut doc, text, error)) => {
            doc.insert("ok".into(), error.is_none().into());
            doc.insert("command".into(), name.into());
            if let Some(e) = &error {
                doc.insert("exit_code".into(), e.exit_code().code().into());
                doc.insert("error".into(), e.to_json());
            }
            Report {
                doc,
                text,
                e2e_ms: None,
                error,
                stderr: None,
            }
        }
        Err(e) => Report::from_error(name, e),
    }
}

type Out = Result<(Map<String, Value>, String, Option<HostError>), HostError>;

/// Reads an application file: TOML, YAML or JSON by its extension.
pub fn read_app(file: &Path) -> Result<Application, HostError> {
    let text = std::fs::read_to_string(file).map_err(|source| HostError::ReadFile {
        path: file.display().to_string(),
        source,
    })?;
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bad = |e: String| HostError::Usage(format!("{}: {e}", file.display()));
    let app: Application = match ext.as_str() {
        "toml" => toml::from_str(&text).map_err(|e| bad(e.to_string()))?,
        "yaml" | "yml" => serde_norway::from_str(&text).map_err(|e| bad(e.to_string()))?,
        "json" => serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?,
        _ => {
            return Err(bad(
                "name the file .toml, .yaml, .yml or .json so its format is known".into(),
            ))
        }
    };
    app.validate(false).map_err(|e| bad(e.to_string()))?;
    Ok(app)
}

async fn apply(store: &AppStore, file: &Path) -> Out {
    let mut app = read_app(file)?;
    if let Some(p) = app.spec.module.path.take() {
        let path = file.parent().unwrap_or(Path::new(".")).join(&p);
        let bytes = super::read_file(&path)?;
        if app.spec.module.kind == ModuleKind::Wasm {
            app.spec.module.kind = ModuleKind::from_path(&p);
        }
        let provenance =
            json!({"file": p, "kind": app.spec.module.kind, "app": app.metadata.name}).to_string();
        let sha = store
            .put_module(&bytes, &provenance)
            .await
            .map_err(fleet_err)?;
        if let Some(want) = &app.spec.module.sha256 {
            if *want != sha {
                return Err(HostError::Usage(format!(
                    "{}: spec.module.sha256 {want} does not match {} (sha256 {sha})",
                    file.display(),
                    path.display()
                )));
            }
        }
        app.spec.module.sha256 = Some(sha);
        app.spec.module.size = Some(bytes.len() as u64);
    } else if let Some(sha) = &app.spec.module.sha256 {
        if store.modules.info(sha).await.is_err() {
            return Err(HostError::Usage(format!(
                "module {sha} is not in the fleet's object store: give spec.module.path once"
            )));
        }
    }
    let (stored, changed) = store.apply(app).await.map_err(fleet_err)?;
    let n = &stored.metadata.name;
    let text = format!(
        "application/{n} {} (generation {})\n",
        if changed { "configured" } else { "unchanged" },
        stored.metadata.generation
    );
    let mut doc = Map::new();
    doc.insert("changed".into(), changed.into());
    doc.insert(
        "application".into(),
        serde_json::to_value(&stored).unwrap_or_default(),
    );
    Ok((doc, text, None))
}

async fn summaries(client: &FleetClient, store: &AppStore) -> Result<Vec<AppSummary>, HostError> {
    let devices = apps::candidates(&client.devices().await.map_err(fleet_err)?);
    let statuses = store.statuses(None).await.map_err(fleet_err)?;
    Ok(store
        .list()
        .await
        .map_err(fleet_err)?
        .iter()
        .map(|a| apps::summarize(a, &devices, &statuses))
        .collect())
}

fn table(head: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn short(sha: Option<&str>) -> String {
    sha.map_or("-".into(), |s| s.chars().take(12).collect())
}

async fn get(client: &FleetClient, store: &AppStore, what: GetWhat) -> Out {
    let mut doc = Map::new();
    let text = match what {
        GetWhat::Apps => {
            let list = summaries(client, store).await?;
            let rows = list
                .iter()
                .map(|s| {
                    vec![
                        s.app.metadata.name.clone(),
                        s.app.metadata.generation.to_string(),
                        format!("{}/{}", s.status.ready, s.status.desired),
                        s.status.updated.to_string(),
                        short(s.app.spec.module.sha256.as_deref()),
                        if s.status.converged { "yes" } else { "no" }.into(),
                    ]
                })
                .collect();
            doc.insert(
                "apps".into(),
                serde_json::to_value(&list).unwrap_or_default(),
            );
            table(
                &[
                    "NAME",
                    "GENERATION",
                    "READY",
                    "UP-TO-DATE",
                    "MODULE",
                    "CONVERGED",
                ],
                rows,
            )
        }
        GetWhat::Devices => {
            let list = client.devices().await.map_err(fleet_err)?;
            let rows = list
                .iter()
                .map(|d| {
                    let labels = d["metadata"]["labels"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default();
                    vec![
                        d["metadata"]["name"].as_str().unwrap_or("?").into(),
                        d["status"]["gateway"].as_str().unwrap_or("-").into(),
                        if d["status"]["online"] == true {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                        d["status"]["board"].as_str().unwrap_or("-").into(),
                        labels,
                    ]
                })
                .collect();
            doc.insert("devices".into(), Value::Array(list));
            table(&["NAME", "GATEWAY", "ONLINE", "BOARD", "LABELS"], rows)
        }
        GetWhat::Gateways => {
            let list = client.gateways().await.map_err(fleet_err)?;
            let rows = list
                .iter()
                .map(|g| {
                    vec![
                        g["metadata"]["name"].as_str().unwrap_or("?").into(),
                        if g["status"]["online"] == true {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                        g["status"]["load"]["devicesServed"].to_string(),
                        g["status"]["version"].as_str().unwrap_or("-").into(),
                    ]
                })
                .collect();
            doc.insert("gateways".into(), Value::Array(list));
            table(&["NAME", "ONLINE", "DEVICES", "VERSION"], rows)
        }
    };
    Ok((doc, text, None))
}

fn no_app(name: &str) -> HostError {
    HostError::Usage(format!(
        "no application `{name}` in the fleet (list them with `wasmbed-host --fleet … get apps`)"
    ))
}

async fn one(client: &FleetClient, store: &AppStore, name: &str) -> Result<AppSummary, HostError> {
    summaries(client, store)
        .await?
        .into_iter()
        .find(|s| s.app.metadata.name == name)
        .ok_or_else(|| no_app(name))
}

/// The human text of `describe app`: the spec, then desired vs reported per device.
pub fn describe_text(s: &AppSummary) -> String {
    let a = &s.app;
    let sp = &a.spec;
    let mut t = String::new();
    t.push_str(&format!("Name:            {}\n", a.metadata.name));
    t.push_str(&format!(
        "Generation:      {} (observed {})\n",
        a.metadata.generation, s.status.observed_generation
    ));
    t.push_str(&format!(
        "Module:          {} ({:?}, {} bytes) as `{}`\n",
        sp.module.sha256.as_deref().unwrap_or("-"),
        sp.module.kind,
        sp.module.size.unwrap_or(0),
        a.module_id()
    ));
    t.push_str(&format!(
        "Start:           {}({})\n",
        sp.function.as_deref().unwrap_or("(none)"),
        sp.args
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    ));
    let sel: Vec<String> = sp
        .selector
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(sp.selector.devices.iter().map(|d| format!("name={d}")))
        .collect();
    t.push_str(&format!(
        "Selector:        {}\n",
        if sel.is_empty() {
            "(every device)".into()
        } else {
            sel.join(",")
        }
    ));
    t.push_str(&format!(
        "Replicas:        {} desired, {} ready, {} up to date\n",
        s.status.desired, s.status.ready, s.status.updated
    ));
    t.push_str(&format!(
        "Strategy:        restart {:?}, maxUnavailable {}\n",
        sp.restart_policy, sp.strategy.max_unavailable
    ));
    t.push_str(&format!(
        "Converged:       {}\n\n",
        if s.status.converged { "yes" } else { "no" }
    ));
    let rows = s
        .status
        .devices
        .iter()
        .map(|d| {
            vec![
                d.device.clone(),
                d.gateway.clone(),
                format!("{:?}", d.phase),
                format!("{}/{}", d.deployed_generation, a.metadata.generation),
                short(d.deployed_sha256.as_deref()),
                d.job_state.clone().unwrap_or_else(|| "-".into()),
                d.restarts.to_string(),
                d.error
                    .clone()
                    .or_else(|| d.last_result.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    t.push_str(&table(
        &[
            "DEVICE",
            "GATEWAY",
            "PHASE",
            "GEN",
            "MODULE",
            "JOB",
            "RESTARTS",
            "RESULT/ERROR",
        ],
        rows,
    ));
    t
}

async fn describe(client: &FleetClient, store: &AppStore, name: &str) -> Out {
    let s = one(client, store, name).await?;
    let mut doc = Map::new();
    doc.insert(
        "application".into(),
        serde_json::to_value(&s).unwrap_or_default(),
    );
    Ok((doc, describe_text(&s), None))
}

async fn delete(store: &AppStore, name: &str) -> Out {
    if !store.delete(name).await.map_err(fleet_err)? {
        return Err(no_app(name));
    }
    let mut doc = Map::new();
    doc.insert("deleted".into(), name.into());
    Ok((
        doc,
        format!("application/{name} deleted (the gateways stop and unload it)\n"),
        None,
    ))
}

async fn rollout_status(
    client: &FleetClient,
    store: &AppStore,
    name: &str,
    timeout: Duration,
) -> Out {
    let started = Instant::now();
    loop {
        let s = one(client, store, name).await?;
        let mut doc = Map::new();
        doc.insert(
            "application".into(),
            serde_json::to_value(&s).unwrap_or_default(),
        );
        let line = format!(
            "application/{name}: generation {}, {} of {} devices ready, {} up to date",
            s.app.metadata.generation, s.status.ready, s.status.desired, s.status.updated
        );
        if s.status.converged {
            return Ok((doc, format!("{line}: rolled out\n"), None));
        }
        if started.elapsed() >= timeout {
            let err = HostError::Timeout {
                what: format!("application {name} to converge ({line})"),
                seconds: timeout.as_secs_f64(),
            };
            return Ok((doc, format!("{line}\n"), Some(err)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmbed_api::app::{Replicas, RestartPolicy};

    #[test]
    fn reads_toml_yaml_json_alike() {
        let dir = tempfile::tempdir().unwrap();
        let toml = "apiVersion = \"wasmbed.dev/v1alpha1\"\nkind = \"Application\"\n\
            [metadata]\nname = \"blink\"\n[spec]\nfunction = \"app_main\"\nreplicas = 2\n\
            restartPolicy = \"Always\"\n[spec.module]\npath = \"b.wasm\"\n\
            [spec.selector.matchLabels]\nroom = \"lab\"\n";
        let yaml = "apiVersion: wasmbed.dev/v1alpha1\nkind: Application\nmetadata:\n  name: blink\n\
            spec:\n  function: app_main\n  replicas: 2\n  restartPolicy: Always\n  module:\n    path: b.wasm\n\
            \x20 selector:\n    matchLabels:\n      room: lab\n";
        let json = r#"{"apiVersion": "wasmbed.dev/v1alpha1", "kind": "Application",
            "metadata": {"name": "blink"}, "spec": {"function": "app_main", "replicas": 2,
            "restartPolicy": "Always", "module": {"path": "b.wasm"},
            "selector": {"matchLabels": {"room": "lab"}}}}"#;
        let mut read = Vec::new();
        for (name, text) in [("a.toml", toml), ("a.yaml", yaml), ("a.json", json)] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            read.push(read_app(&p).unwrap_or_else(|e| panic!("{name}: {e}")));
        }
        assert_eq!(read[0], read[1]);
        assert_eq!(read[0], read[2]);
        assert_eq!(read[0].spec.replicas, Replicas::Count(2));
        assert_eq!(read[0].spec.restart_policy, RestartPolicy::Always);
        let p = dir.path().join("a.txt");
        std::fs::write(&p, json).unwrap();
        assert!(matches!(read_app(&p), Err(HostError::Usage(_))));
        let p = dir.path().join("bad.json");
        std::fs::write(&p, json.replace("blink", "Blink!")).unwrap();
        assert!(matches!(read_app(&p), Err(HostError::Usage(_))));
    }
}
