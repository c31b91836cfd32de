//! The `dispersy` binary end to end: keygen, id and decode.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn dispersy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dispersy"))
        .args(args)
        .output()
        .expect("runs")
}

fn dispersy_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispersy"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writes");
    child.wait_with_output().expect("finishes")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .to_owned()
}

fn vectors(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dispersy/tests/vectors")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json")
}

#[test]
fn keygen_then_id_round_trip_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("member.key");
    let p = path.to_str().unwrap();
    let made = dispersy(&["keygen", "--out", p]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let mid = field(&text(&made.stdout), "member-id");
    assert_eq!(mid.len(), 40);

    let shown = dispersy(&["id", p]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let out = text(&shown.stdout);
    assert_eq!(field(&out, "member-id"), mid);
    assert!(field(&out, "public-key").starts_with("4c69624e61434c504b3a"));
    assert_eq!(std::fs::read(&path).unwrap().len(), 74);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let again = dispersy(&["keygen", "--out", p]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"));
    assert_eq!(field(&text(&dispersy(&["id", p]).stdout), "member-id"), mid);

    let forced = dispersy(&["keygen", "--out", p, "--force"]);
    assert!(forced.status.success());
    assert_ne!(field(&text(&forced.stdout), "member-id"), mid);
}

#[test]
fn id_names_the_file_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let v = vectors("ipv8-vectors.json");
    let public = hex::decode(v["key"]["pk_bin_hex"].as_str().unwrap()).unwrap();
    let private = hex::decode(v["key"]["sk_bin_hex"].as_str().unwrap()).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("public.key", public, "found a public key"),
        ("short.key", private[..50].to_vec(), "50 bytes"),
        ("text.key", b"not a key\n".to_vec(), "unknown key format"),
    ];
    for (name, contents, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let out = dispersy(&["id", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{name}");
        let err = text(&out.stderr);
        assert!(err.contains(name) && err.contains(needle), "{name}: {err}");
    }
    let out = dispersy(&["id", dir.path().join("absent.key").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("absent.key"));

    // The fixed vector key loads and has the vector's member id.
    let path = dir.path().join("fixed.key");
    std::fs::write(&path, &private).unwrap();
    let out = dispersy(&["id", path.to_str().unwrap()]);
    assert_eq!(
        field(&text(&out.stdout), "member-id"),
        v["key"]["mid_hex"].as_str().unwrap()
    );
}

#[test]
fn every_golden_vector_decodes_with_valid_signatures() {
    let mut seen = 0;
    for file in ["ipv8-vectors.json", "dispersy-vectors.json"] {
        let v = vectors(file);
        for (name, p) in v["packets"].as_object().unwrap() {
            let hex = p["packet_hex"].as_str().unwrap();
            let mut args = vec!["decode", hex];
            if let Some(layout) = p.get("layout").and_then(Value::as_str) {
                let l = layout
                    .strip_prefix("double-member-")
                    .map_or(layout, |rest| {
                        if rest == "key" {
                            "double-key"
                        } else {
                            "double-id"
                        }
                    });
                args.extend(["--layout", l]);
            }
            let key = v["key"]["pk_bin_hex"].as_str().unwrap();
            args.extend(["--member-key", key]);
            let out = dispersy(&args);
            assert!(out.status.success(), "{name}: {}", text(&out.stderr));
            let d: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
            let want = if p["signed"].as_bool().unwrap() {
                "valid"
            } else {
                "unsigned"
            };
            assert_eq!(d["signature"], want, "{name}: {d}");
            assert!(d.get("error").is_none(), "{name}: {d}");
            assert_eq!(d["message"]["byte"], p["msg_id"], "{name}");
            seen += 1;
        }
    }
    assert!(seen >= 27, "{seen} vectors");
}

#[test]
fn stdin_gives_one_json_object_per_line() {
    let v = vectors("ipv8-vectors.json");
    let lines: Vec<&str> = v["packets"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["packet_hex"].as_str().unwrap())
        .collect();
    let input = format!("# golden packets\n\n{}\n", lines.join("\n"));
    let out = dispersy_stdin(&["decode", "-"], &input);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let objects: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(objects.len(), lines.len());
}

#[test]
fn truncated_corrupted_and_non_hex_packets_fail_clearly() {
    let v = vectors("ipv8-vectors.json");
    let good = v["packets"]["introduction_request_246"]["packet_hex"]
        .as_str()
        .unwrap();
    let truncated = &good[..good.len() - 20];
    let mut corrupted = hex::decode(good).unwrap();
    corrupted[120] ^= 0x40;
    let corrupted = hex::encode(corrupted);
    let cases = [
        (truncated.to_owned(), "truncated"),
        (corrupted, "signature 1 of 1 is invalid"),
        (good[..30].to_owned(), "truncated prefix"),
        ("00zz".to_owned(), "not a hex packet"),
        (format!("{good}0"), "not a hex packet"),
    ];
    for (packet, needle) in &cases {
        let out = dispersy(&["decode", packet]);
        assert!(!out.status.success(), "{needle}");
        let err = text(&out.stderr);
        assert!(err.contains(needle), "wanted {needle:?} in {err}");
    }
    // In a stream, the bad line is named and the good ones still decode.
    let input = format!("{good}\n{truncated}\n{good}\n");
    let out = dispersy_stdin(&["decode"], &input);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("line 2: truncated"));
    assert_eq!(text(&out.stdout).lines().count(), 3);
}
