//! `wasmbed-host keys generate|show|sign`: module-signing keys (docs/SECURITY.md "Signed
//! modules"); `keys provision`: a bare-metal board's identity record. Needs no gateway.
//! The key file format is the gateway's `[signing] key_file`.

use serde_json::{Map, Value};
use wasmbed_agent_proto::{AotTarget, ModuleId};
use wasmbed_gateway::signing::ModuleKey;

use super::{read_file, Report};
use crate::cli::{KeysArgs, KeysCommand};
use crate::error::HostError;

fn key_error(e: wasmbed_gateway::signing::KeyError) -> HostError {
    HostError::Usage(e.to_string())
}

fn report(doc: Map<String, Value>, text: String) -> Report {
    Report {
        doc,
        text,
        e2e_ms: None,
        error: None,
        stderr: None,
    }
}

fn key_doc(k: &ModuleKey, path: &std::path::Path) -> (Map<String, Value>, String) {
    let mut doc = Map::new();
    doc.insert("ok".into(), true.into());
    doc.insert("command".into(), "keys".into());
    doc.insert("key_file".into(), path.display().to_string().into());
    doc.insert("public_key".into(), k.public_hex().into());
    doc.insert("key_id".into(), k.key_id().to_string().into());
    let text = format!(
        "key file    {}\npublic key  {}\nkey id      {}\n",
        path.display(),
        k.public_hex(),
        k.key_id()
    );
    (doc, text)
}

/// `AOT target` text `arch/cpu/features/abi/aot_version` (INFO's fields).
fn parse_target(text: &str) -> Result<AotTarget, HostError> {
    let p: Vec<&str> = text.split('/').collect();
    let bad = || {
        HostError::Usage(format!(
            "--aot-target wants ARCH/CPU/FEATURES/ABI/AOT_VERSION as the device's INFO says \
             (e.g. thumbv7em/cortex-m4/none/eabihf/6), got `{text}`"
        ))
    };
    let [arch, cpu, features, abi, version] = p[..] else {
        return Err(bad());
    };
    Ok(AotTarget {
        arch: arch.into(),
        cpu: cpu.into(),
        features: features.into(),
        abi: abi.into(),
        aot_version: version.parse().map_err(|_| bad())?,
    })
}

/// Runs `keys`.
pub fn run(a: &KeysArgs) -> Result<Report, HostError> {
    match &a.command {
        KeysCommand::Generate { key_file } => {
            let k = ModuleKey::generate(key_file).map_err(key_error)?;
            let (doc, text) = key_doc(&k, key_file);
            Ok(report(
                doc,
                text + "devices trust it with: --trusted-key <public key> (simulated board) or \
                        TRUSTED_KEYS=<file with the public key> (bare-metal build.sh)\n",
            ))
        }
        KeysCommand::Show { key_file } => {
            let k = ModuleKey::load(key_file).map_err(key_error)?;
            let (doc, text) = key_doc(&k, key_file);
            Ok(report(doc, text))
        }
        KeysCommand::Provision { output } => provision(output),
        KeysCommand::Sign {
            key,
            module_id,
            module_version: version,
            aot_target,
            output,
            file,
        } => {
            let k = ModuleKey::load(key).map_err(key_error)?;
            let id = ModuleId::new(module_id.clone())
                .map_err(|e| HostError::Usage(format!("--module-id: {e}")))?;
            let target = aot_target.as_deref().map(parse_target).transpose()?;
            let bytes = read_file(file)?;
            let sig = k
                .sign(&id, *version, target.as_ref(), &bytes)
                .map_err(|e| HostError::Usage(format!("{e} (--aot-target)")))?;
            let line = format!("{sig}\n");
            std::fs::write(output, &line).map_err(|source| HostError::ReadFile {
                path: output.display().to_string(),
                source,
            })?;
            let mut doc = Map::new();
            doc.insert("ok".into(), true.into());
            doc.insert("command".into(), "keys".into());
            doc.insert("signature_file".into(), output.display().to_string().into());
            doc.insert("key_id".into(), k.key_id().to_string().into());
            doc.insert("version".into(), (*version).into());
            Ok(report(
                doc,
                format!(
                    "signed {} as {module_id} version {version} with key {}: {}\n",
                    file.display(),
                    k.key_id(),
                    output.display()
                ),
            ))
        }
    }
}

/// `keys provision`: a new identity record for a bare-metal board (docs/SECURITY.md "Device
/// identity"; the format: `wasmbed_agent_proto::identity::Provisioned`).
fn provision(output: &std::path::Path) -> Result<Report, HostError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    use wasmbed_agent_proto::identity::{short, Provisioned};

    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| HostError::Usage(format!("no random bytes for a new identity: {e}")))?;
    let id = Provisioned::from_seed(seed);
    seed.fill(0);
    let io = |e: std::io::Error| {
        HostError::Usage(format!(
            "cannot write {}: {e} (a record is never overwritten: name a new file)",
            output.display()
        ))
    };
    // Never over an existing record: it may be the only copy of a flashed board's identity.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output)
        .map_err(io)?;
    f.write_all(&id.record())
        .and_then(|()| f.sync_all())
        .map_err(io)?;
    let fp = id.fingerprint();
    let public = wasmbed_agent_proto::identity::hex(&id.public_key());
    let mut doc = Map::new();
    doc.insert("ok".into(), true.into());
    doc.insert("command".into(), "keys".into());
    doc.insert("record_file".into(), output.display().to_string().into());
    doc.insert("public_key".into(), public.clone().into());
    doc.insert("fingerprint".into(), fp.clone().into());
    let text = format!(
        "record file  {}\npublic key   {public}\nfingerprint  {fp} (devices shows {})\n\
         next: flash it at the board's identity page (build.sh prints the address; \
         firmware-agent/ports/baremetal/README.md \"Device identity\"),\n      \
         approve the board with `wasmbed-host devices approve NAME --fingerprint {fp}`,\n      \
         then delete the file or keep it offline: it holds the board's secret key\n",
        output.display(),
        short(&fp),
    );
    Ok(report(doc, text))
}
