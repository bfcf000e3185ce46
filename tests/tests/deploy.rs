//! The deployments under `deploy/` are checked as far as this machine can:
//! the Kustomize overlays render and their objects hold what the README
//! promises (non-root, read-only root, IPC_LOCK, probes, a ServiceMonitor);
//! `systemd-analyze verify` accepts the unit; the Compose file and the
//! Dockerfile describe the topology; and `deploy/local/topology.sh` brings
//! the staging topology up as processes, replicates, backs up to S3 and
//! tears down.
//!
//! Tools: `kubectl` (its built-in kustomize), `systemd-analyze`, `python3`
//! with PyYAML (YAML to JSON; the checks are in Rust), `redis-cli`, `curl`.
//! A missing tool fails the test, never skips it. The topology test needs
//! `RAMPART_TEST_KMS_ENDPOINT` and `RAMPART_TEST_S3_*` from scripts/test.sh.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use rampart_tests::{
    rampart_bin, require_tool, run_with_timeout, wait_for, workspace_root, RawConn,
};
use serde_json::Value;

fn deploy(path: &str) -> PathBuf {
    workspace_root().join("deploy").join(path)
}

/// Every YAML document in `text`, as JSON (PyYAML's safe loader).
fn yaml_docs(text: &str) -> Result<Vec<Value>> {
    let python = require_tool("python3")?;
    let mut child = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml\njson.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("no stdin"))?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "python3 could not parse the YAML (is PyYAML installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout)? {
        Value::Array(docs) => Ok(docs),
        other => bail!("not a list of documents: {other}"),
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `key` as one JSON Pointer token (label keys hold `/`).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn render(overlay: &str) -> Result<Vec<Value>> {
    let kubectl = require_tool("kubectl")?;
    let out = run_with_timeout(
        Command::new(kubectl)
            .arg("kustomize")
            .arg(deploy(&format!("k8s/overlays/{overlay}"))),
        Duration::from_secs(60),
    )?;
    ensure!(
        out.status.success(),
        "kubectl kustomize {overlay}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml_docs(&String::from_utf8_lossy(&out.stdout))
}

fn one<'a>(objs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    objs.iter()
        .find(|o| s(o, "/kind") == kind && s(o, "/metadata/name").starts_with(name))
        .ok_or_else(|| anyhow!("no {kind} {name}"))
}

/// The checks both overlays must pass.
fn check_overlay(overlay: &str, namespace: &str) -> Result<Vec<Value>> {
    let objs = render(overlay)?;
    let kinds: BTreeSet<&str> = objs.iter().map(|o| s(o, "/kind")).collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "ServiceMonitor",
    ] {
        ensure!(kinds.contains(kind), "{overlay}: no {kind} in {kinds:?}");
    }
    for o in &objs {
        if s(o, "/kind") != "Namespace" {
            ensure!(
                s(o, "/metadata/namespace") == namespace,
                "{overlay}: {} {} is not in {namespace}",
                s(o, "/kind"),
                s(o, "/metadata/name")
            );
        }
    }

    let sts = one(&objs, "StatefulSet", "rampart")?;
    let headless = one(&objs, "Service", "rampart-headless")?;
    ensure!(s(sts, "/spec/serviceName") == "rampart-headless");
    ensure!(
        s(headless, "/spec/clusterIP") == "None",
        "the headless Service has a cluster IP"
    );
    ensure!(sts.pointer("/spec/replicas").and_then(Value::as_u64) >= Some(3));
    let primary = one(&objs, "Service", "rampart-primary")?;
    ensure!(
        s(
            primary,
            "/spec/selector/statefulset.kubernetes.io~1pod-name"
        ) == "rampart-0",
        "the primary Service does not select rampart-0"
    );
    let selector = sts
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no selector"))?;
    let pod_labels = sts
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no pod labels"))?;
    for (k, v) in selector {
        ensure!(
            pod_labels.get(k) == Some(v),
            "the selector {k} misses the pods"
        );
        ensure!(
            headless.pointer(&format!("/spec/selector/{}", escape(k))) == Some(v),
            "the headless Service misses the pods ({k})"
        );
    }

    let pod = sts
        .pointer("/spec/template/spec")
        .ok_or_else(|| anyhow!("no pod spec"))?;
    ensure!(pod.pointer("/securityContext/runAsNonRoot") == Some(&Value::Bool(true)));
    ensure!(
        pod.pointer("/securityContext/runAsUser")
            .and_then(Value::as_u64)
            > Some(0)
    );
    let containers: Vec<&Value> = ["/containers", "/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .collect();
    ensure!(
        containers.len() >= 2,
        "{overlay}: the server and the keyring init container"
    );
    for c in &containers {
        let name = s(c, "/name");
        ensure!(
            c.pointer("/securityContext/readOnlyRootFilesystem") == Some(&Value::Bool(true)),
            "{overlay}: {name} has a writable root filesystem"
        );
        ensure!(
            c.pointer("/securityContext/allowPrivilegeEscalation") == Some(&Value::Bool(false)),
            "{overlay}: {name} may escalate privileges"
        );
        ensure!(
            c.pointer("/securityContext/capabilities/drop") == Some(&serde_json::json!(["ALL"])),
            "{overlay}: {name} keeps default capabilities"
        );
        ensure!(
            !s(c, "/resources/requests/memory").is_empty()
                && !s(c, "/resources/requests/cpu").is_empty(),
            "{overlay}: {name} has no resource requests"
        );
    }
    let server = pod
        .pointer("/containers/0")
        .ok_or_else(|| anyhow!("no server container"))?;
    ensure!(
        server.pointer("/securityContext/capabilities/add")
            == Some(&serde_json::json!(["IPC_LOCK"])),
        "{overlay}: the server has no IPC_LOCK for lock-memory"
    );
    ensure!(
        server.pointer("/readinessProbe").is_some() && server.pointer("/livenessProbe").is_some()
    );
    let ports: Vec<(&str, u64)> = server
        .pointer("/ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        s(p, "/name"),
                        p.pointer("/containerPort")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ensure!(
        ports.contains(&("redis", 6379)) && ports.contains(&("metrics", 9121)),
        "{ports:?}"
    );
    // The replicas follow the primary's stable name.
    let script = server
        .pointer("/command")
        .map(Value::to_string)
        .unwrap_or_default();
    ensure!(
        script.contains("--replicaof rampart-0.rampart-headless 6379"),
        "{script}"
    );

    // The config the pods mount is the generated ConfigMap, and it turns
    // the metrics port on.
    let config = one(&objs, "ConfigMap", "rampart-config")?;
    let config_name = s(config, "/metadata/name");
    let mounted = pod
        .pointer("/volumes")
        .and_then(Value::as_array)
        .and_then(|v| v.iter().find(|v| s(v, "/name") == "config"))
        .map(|v| s(v, "/configMap/name"))
        .unwrap_or_default();
    ensure!(
        mounted == config_name,
        "pods mount {mounted}, not {config_name}"
    );
    let conf = s(config, "/data/rampart.conf");
    for line in [
        "metrics-port 9121",
        "metrics-bind 0.0.0.0",
        "lock-memory yes",
        "encryption-at-rest yes",
    ] {
        ensure!(
            conf.lines().any(|l| l.trim() == line),
            "{overlay}: the config lacks `{line}`"
        );
    }

    let monitor = one(&objs, "ServiceMonitor", "rampart")?;
    ensure!(s(monitor, "/apiVersion") == "monitoring.coreos.com/v1");
    ensure!(s(monitor, "/spec/endpoints/0/port") == "metrics");
    let scraped = monitor
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("the ServiceMonitor selects nothing"))?;
    for (k, v) in scraped {
        ensure!(
            headless.pointer(&format!("/metadata/labels/{}", escape(k))) == Some(v),
            "the ServiceMonitor's {k} does not select the headless Service"
        );
    }
    ensure!(
        headless
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|p| s(p, "/name") == "metrics")),
        "the headless Service has no metrics port"
    );
    let pdb = one(&objs, "PodDisruptionBudget", "rampart")?;
    ensure!(pdb.pointer("/spec/selector/matchLabels") == sts.pointer("/spec/selector/matchLabels"));
    Ok(objs)
}

#[test]
fn kustomize_staging_renders_with_a_secret_keyring() -> Result<()> {
    let objs = check_overlay("staging", "rampart-staging")?;
    let sts = one(&objs, "StatefulSet", "rampart")?;
    let secret = sts
        .pointer("/spec/template/spec/volumes")
        .and_then(Value::as_array)
        .and_then(|v| v.iter().find(|v| s(v, "/name") == "keyring-secret"))
        .ok_or_else(|| anyhow!("no keyring Secret volume"))?;
    ensure!(s(secret, "/secret/secretName") == "rampart-keyring");
    let conf = s(
        one(&objs, "ConfigMap", "rampart-config")?,
        "/data/rampart.conf",
    );
    ensure!(conf.contains("kms-key-file /run/rampart/keys/keyring.json"));
    // The keyring is copied to a tmpfs, never to a disk.
    let keys = sts
        .pointer("/spec/template/spec/volumes")
        .and_then(Value::as_array)
        .and_then(|v| v.iter().find(|v| s(v, "/name") == "keys"))
        .ok_or_else(|| anyhow!("no keys volume"))?;
    ensure!(s(keys, "/emptyDir/medium") == "Memory");
    Ok(())
}

#[test]
fn kustomize_production_renders_with_kms_through_irsa() -> Result<()> {
    let objs = check_overlay("production", "rampart")?;
    let sa = one(&objs, "ServiceAccount", "rampart")?;
    ensure!(s(sa, "/metadata/annotations/eks.amazonaws.com~1role-arn").starts_with("arn:aws:iam::"));
    let sts = one(&objs, "StatefulSet", "rampart")?;
    ensure!(s(sts, "/spec/template/spec/serviceAccountName") == "rampart");
    let conf = s(
        one(&objs, "ConfigMap", "rampart-config")?,
        "/data/rampart.conf",
    );
    ensure!(
        conf.contains("kms-provider aws") && conf.contains("kms-key-id "),
        "{conf}"
    );
    ensure!(conf.contains("backup-s3-bucket "), "{conf}");
    let pdb = one(&objs, "PodDisruptionBudget", "rampart")?;
    ensure!(pdb.pointer("/spec/minAvailable").and_then(Value::as_u64) == Some(2));
    Ok(())
}

#[test]
fn systemd_unit_verifies_and_is_hardened() -> Result<()> {
    let analyze = require_tool("systemd-analyze")?;
    let unit = std::fs::read_to_string(deploy("systemd/rampart.service"))?;
    for line in [
        "Type=notify",
        "LimitCORE=0",
        "LimitMEMLOCK=infinity",
        "AmbientCapabilities=CAP_IPC_LOCK",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/rampart /var/log/rampart",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
    ] {
        ensure!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .ok_or_else(|| anyhow!("no ExecStart"))?;
    ensure!(exec.contains("--supervised systemd"), "{exec}");
    // verify checks that ExecStart's binary exists: point it at the one
    // just built instead of /usr/local/bin.
    let bin = rampart_bin()?;
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join("rampart.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/rampart-server", &bin.to_string_lossy()),
    )?;
    let out = run_with_timeout(
        Command::new(analyze).arg("verify").arg(&copy),
        Duration::from_secs(60),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "systemd-analyze verify: {stderr}");
    // Unknown or misspelt keys are only warnings: none may name the unit.
    ensure!(
        !stderr.contains("rampart.service"),
        "systemd-analyze verify: {stderr}"
    );

    // Every directive in rampart.conf (a commented `# name value` line;
    // prose starts with a capital) is one the server knows.
    let conf = std::fs::read_to_string(deploy("systemd/rampart.conf"))?;
    let server = rampart_tests::Rampart::start(&[])?;
    let mut c = server.conn()?;
    for line in conf.lines() {
        let Some(rest) = line.strip_prefix("# ") else {
            continue;
        };
        let Some(name) = rest.split_whitespace().next() else {
            continue;
        };
        if !name.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-') || !rest.contains(' ') {
            continue;
        }
        if name.starts_with("metrics-") {
            // Added by the metrics work (issue 16); not in every build yet.
            continue;
        }
        let reply = c.cmd(&["CONFIG", "GET", name])?;
        ensure!(
            reply.starts_with(b"*2\r\n"),
            "rampart.conf names {name}, which CONFIG GET does not know"
        );
    }
    Ok(())
}

#[test]
fn compose_file_describes_the_staging_topology() -> Result<()> {
    let text = std::fs::read_to_string(deploy("compose/docker-compose.yml"))?;
    let docs = yaml_docs(&text)?;
    let compose = docs
        .first()
        .ok_or_else(|| anyhow!("an empty compose file"))?;
    let services = compose
        .pointer("/services")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no services"))?;
    for name in [
        "primary",
        "replica-1",
        "replica-2",
        "garage",
        "kms",
        "kms-key",
    ] {
        ensure!(services.contains_key(name), "no service {name}");
    }
    let volumes = compose
        .pointer("/volumes")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no volumes"))?;
    let mut host_ports = BTreeSet::new();
    for (name, svc) in services {
        for p in svc
            .pointer("/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let p = p.as_str().unwrap_or_default();
            ensure!(
                p.starts_with("127.0.0.1:"),
                "{name} publishes {p} beyond loopback"
            );
            ensure!(
                host_ports.insert(p.rsplit_once(':').map_or(p, |(h, _)| h).to_string()),
                "{p} twice"
            );
        }
    }
    let conf = s(compose, "/configs/rampart-conf/content");
    for line in [
        "kms-provider aws",
        "kms-endpoint http://kms:5000",
        "backup-s3-endpoint http://garage:3900",
        "backup-s3-path-style yes",
        "metrics-port 9121",
    ] {
        ensure!(
            conf.lines().any(|l| l == line),
            "the nodes' config lacks `{line}`"
        );
    }
    // The key alias the nodes name is the one the kms-key job creates.
    let alias = conf
        .lines()
        .find_map(|l| l.strip_prefix("kms-key-id "))
        .ok_or_else(|| anyhow!("no kms-key-id"))?;
    ensure!(
        services["kms-key"].to_string().contains(alias),
        "kms-key does not create {alias}"
    );
    let bucket = conf
        .lines()
        .find_map(|l| l.strip_prefix("backup-s3-bucket "))
        .unwrap_or_default();
    ensure!(s(&services["garage"], "/environment/GARAGE_DEFAULT_BUCKET") == bucket);
    for node in ["primary", "replica-1", "replica-2"] {
        let svc = &services[node];
        let data = svc
            .pointer("/volumes")
            .and_then(Value::as_array)
            .and_then(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .find(|v| v.ends_with(":/data"))
            })
            .ok_or_else(|| anyhow!("{node} has no /data volume"))?;
        let volume = data.trim_end_matches(":/data");
        ensure!(
            volumes.contains_key(volume),
            "{node}'s volume {volume} is not declared"
        );
        ensure!(
            svc.pointer("/cap_add") == Some(&serde_json::json!(["IPC_LOCK"])),
            "{node} lacks IPC_LOCK"
        );
        let cmd = svc
            .pointer("/command")
            .map(Value::to_string)
            .unwrap_or_default();
        if node == "primary" {
            ensure!(!cmd.contains("replicaof"), "{cmd}");
        } else {
            ensure!(
                cmd.contains(r#""--replicaof","primary","6379""#),
                "{node}: {cmd}"
            );
        }
        ensure!(
            svc.pointer("/depends_on/kms-key").is_some()
                && svc.pointer("/depends_on/garage").is_some()
        );
    }
    // The volumes of distinct nodes are distinct.
    let data: BTreeSet<String> = ["primary", "replica-1", "replica-2"]
        .iter()
        .map(|n| {
            services[*n]
                .pointer("/volumes/0")
                .map(Value::to_string)
                .unwrap_or_default()
        })
        .collect();
    ensure!(data.len() == 3, "nodes share a data volume: {data:?}");

    let dockerfile = std::fs::read_to_string(deploy("docker/Dockerfile"))?;
    for needle in [
        "AS build",
        "FROM debian:bookworm-slim",
        "USER 10001:10001",
        "VOLUME [\"/data\"]",
        "HEALTHCHECK",
        "redis-cli",
        "CMD [\"/etc/rampart/rampart.conf\"]",
    ] {
        ensure!(dockerfile.contains(needle), "the Dockerfile lacks {needle}");
    }
    let image_conf = std::fs::read_to_string(deploy("docker/rampart.conf"))?;
    ensure!(image_conf.contains("kms-key-file /run/secrets/rampart-keyring"));
    Ok(())
}

/// `deploy/local/topology.sh stop`, run on drop so a failed test leaves no
/// process behind.
struct Topology {
    dir: PathBuf,
    stopped: bool,
}

impl Topology {
    fn script(&self, cmd: &str) -> Result<std::process::Output> {
        run_with_timeout(
            Command::new("bash")
                .arg(deploy("local/topology.sh"))
                .arg(cmd)
                .env("RAMPART_TOPOLOGY_DIR", &self.dir)
                .env("RAMPART_SERVER_BIN", rampart_bin()?)
                .stdin(Stdio::null()),
            Duration::from_secs(180),
        )
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.script("stop");
        }
    }
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| {
        anyhow!(
            "{name} is not set: run through scripts/test.sh, which starts the KMS and S3 endpoints"
        )
    })
}

fn info(port: u16) -> Result<String> {
    let reply = RawConn::connect(port)?.cmd(&["INFO", "replication"])?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

fn pids(dir: &Path) -> Vec<u32> {
    ["primary", "replica-1", "replica-2"]
        .iter()
        .filter_map(|n| std::fs::read_to_string(dir.join(n).join("rampart.pid")).ok())
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

#[test]
fn local_topology_replicates_backs_up_and_stops_cleanly() -> Result<()> {
    for name in [
        "RAMPART_TEST_KMS_ENDPOINT",
        "RAMPART_TEST_S3_ENDPOINT",
        "RAMPART_TEST_S3_BUCKET",
        "RAMPART_TEST_S3_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        env(name)?;
    }
    require_tool("redis-cli")?;
    let tmp = tempfile::tempdir()?;
    let mut topo = Topology {
        dir: tmp.path().join("topology"),
        stopped: false,
    };
    let out = topo.script("start")?;
    ensure!(
        out.status.success(),
        "topology.sh start: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let vars: std::collections::BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let var = |k: &str| {
        vars.get(k)
            .cloned()
            .ok_or_else(|| anyhow!("topology.sh printed no {k}"))
    };
    let port = |k: &str| -> Result<u16> { Ok(var(k)?.parse()?) };
    let (p0, p1, p2) = (
        port("PRIMARY_PORT")?,
        port("REPLICA1_PORT")?,
        port("REPLICA2_PORT")?,
    );
    let started = pids(&topo.dir);
    ensure!(started.len() == 3, "pidfiles: {started:?}");

    let mut c = RawConn::connect(p0)?;
    for i in 0..200 {
        c.cmd(&["SET", &format!("key:{i}"), &format!("value-{i}")])?;
    }
    c.cmd(&["HSET", "h", "f", "v"])?;
    for replica in [p1, p2] {
        wait_for("the replica to converge", Duration::from_secs(60), || {
            let info = info(replica)?;
            let dbsize = RawConn::connect(replica)?.cmd(&["DBSIZE"])?;
            Ok(info.contains("master_link_status:up") && dbsize == b":201\r\n")
        })
        .with_context(|| {
            format!(
                "replica on {replica}: {}",
                info(replica).unwrap_or_default()
            )
        })?;
        let mut r = RawConn::connect(replica)?;
        ensure!(r.cmd(&["GET", "key:199"])? == b"$9\r\nvalue-199\r\n");
        ensure!(r.cmd(&["HGET", "h", "f"])? == b"$1\r\nv\r\n");
        // The dataset key is the KMS key both replicas share.
        let text = std::fs::read_to_string(
            topo.dir
                .join(if replica == p1 {
                    "replica-1"
                } else {
                    "replica-2"
                })
                .join("server.log"),
        )?;
        ensure!(text.contains("provider=aws"), "{text}");
    }
    let status = topo.script("status")?;
    let status_text = String::from_utf8_lossy(&status.stdout);
    ensure!(status.status.success(), "{status_text}");
    ensure!(
        status_text.matches("master_link_status=up").count() == 2,
        "{status_text}"
    );

    // A backup lands in the S3 store, under the topology's prefix.
    let reply = c.cmd(&["BACKUP", "CREATE", "topology-test"])?;
    ensure!(
        reply.starts_with(b"$") || reply.starts_with(b"+"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let rampart = rampart_bin()?.with_file_name("rampart");
    let store = format!("s3://{}/{}", var("S3_BUCKET")?, var("S3_PREFIX")?);
    let list = run_with_timeout(
        Command::new(&rampart).args([
            "backup",
            "list",
            "--store",
            &store,
            "--s3-endpoint",
            &var("S3_ENDPOINT")?,
            "--s3-region",
            &var("S3_REGION")?,
            "--s3-path-style",
        ]),
        Duration::from_secs(60),
    )?;
    let listed = String::from_utf8_lossy(&list.stdout);
    ensure!(
        list.status.success() && listed.contains("topology-test"),
        "rampart backup list: {listed}{}",
        String::from_utf8_lossy(&list.stderr)
    );

    let out = topo.script("stop")?;
    topo.stopped = true;
    ensure!(
        out.status.success(),
        "topology.sh stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pid in started {
        ensure!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} is still running after stop"
        );
    }
    let status = topo.script("status")?;
    ensure!(
        !status.status.success(),
        "status after stop: {}",
        String::from_utf8_lossy(&status.stdout)
    );
    Ok(())
}
