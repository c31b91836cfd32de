//! `dispersy post`, `messages`, `peers` and `status`: a person's view of a running node,
//! through its REST API. Tables by default, `--json` for scripts.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use dispersy_cli::client::{Client, DEFAULT_API};
use dispersy_cli::daemon::config::default_data_dir;
use dispersy_cli::daemon::views::{
    CandidateList, CommunityList, CommunityView, Created, MessagePage, MessageView, NodeView,
    StatsView,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;

/// Where the node is and how to talk to it.
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// The node's API.
    #[arg(long, env = "DISPERSY_API", default_value = DEFAULT_API, global = true)]
    api: String,
    /// The API token (default: read from the data directory when the node keeps one there).
    #[arg(long, env = "DISPERSY_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// The node's data directory (to find its API token).
    #[arg(long, env = "DISPERSY_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

impl Conn {
    fn client(&self) -> Client {
        let token = self.token.clone().or_else(|| {
            let path = self
                .data_dir
                .clone()
                .unwrap_or_else(default_data_dir)
                .join("api.token");
            std::fs::read_to_string(path)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        });
        Client::new(&self.api, token)
    }
}

/// Picks the community: by id, by unique name or id prefix, or the only one.
fn community(client: &Client, wanted: Option<&str>) -> anyhow::Result<CommunityView> {
    let list: CommunityList = client.get("/api/v1/communities", &[])?;
    let names = || {
        list.communities
            .iter()
            .map(|c| format!("{} ({})", c.name, &c.id[..8]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let matching: Vec<&CommunityView> = match wanted {
        None => list.communities.iter().collect(),
        Some(w) => list
            .communities
            .iter()
            .filter(|c| c.id == w || c.name == w || (w.len() >= 4 && c.id.starts_with(w)))
            .collect(),
    };
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] if list.communities.is_empty() => bail!("the node hosts no community"),
        [] => bail!(
            "no community {:?}; the node hosts {}",
            wanted.unwrap_or(""),
            names()
        ),
        _ => bail!(
            "name the community with --community; the node hosts {}",
            names()
        ),
    }
}

fn out() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    writeln!(out(), "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

/// Prints rows as aligned columns; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut o = out();
    let line = |o: &mut std::io::StdoutLock<'_>, cells: &[String]| -> std::io::Result<()> {
        let n = cells.len();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == n {
                writeln!(o, "{c}")?;
            } else {
                write!(o, "{c:<w$}  ")?;
            }
        }
        Ok(())
    };
    line(
        &mut o,
        &header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>(),
    )?;
    for r in rows {
        line(&mut o, r)?;
    }
    Ok(())
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

/// Arguments of `dispersy post`.
#[derive(Debug, clap::Args)]
pub struct PostArgs {
    #[command(flatten)]
    conn: Conn,
    /// The community (id, id prefix or name; default: the only one).
    #[arg(long, short)]
    community: Option<String>,
    /// The message type (default: `post` if the community has one, else its first).
    #[arg(long, short)]
    meta: Option<String>,
    /// The content is hexadecimal.
    #[arg(long, conflicts_with = "base64")]
    hex: bool,
    /// The content is base64.
    #[arg(long)]
    base64: bool,
    /// Post every line of standard input as a message (in batches, with a progress bar).
    #[arg(long, conflicts_with = "text")]
    stdin: bool,
    /// The content (words are joined with spaces).
    #[arg(required_unless_present = "stdin")]
    text: Vec<String>,
}

/// `dispersy post`.
pub fn post(args: &PostArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client();
    let c = community(&client, args.community.as_deref())?;
    let meta = match &args.meta {
        Some(m) => m.clone(),
        None => {
            let app = c
                .metas
                .iter()
                .filter(|m| !m.builtin && m.distribution != "direct");
            let mut app = app.peekable();
            let first = app.peek().map(|m| m.name.clone());
            app.find(|m| m.name == "post")
                .map(|m| m.name.clone())
                .or(first)
                .context("the community has no message type to post")?
        }
    };
    let encoding = if args.hex {
        "hex"
    } else if args.base64 {
        "base64"
    } else {
        "text"
    };
    let path = format!("/api/v1/communities/{}/messages", c.id);
    let one = |payload: String| json!({ "meta": meta, "payload": payload, "encoding": encoding });
    if !args.stdin {
        let m: Option<MessageView> = client.post(&path, &one(args.text.join(" ")))?;
        let m = m.context("the node answered nothing")?;
        if args.conn.json {
            print_json(&m)?;
        } else {
            writeln!(
                out(),
                "posted {} in {} at global time {}",
                m.id.unwrap_or_default(),
                c.name,
                m.global_time
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let lines: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .collect::<Result<_, _>>()
        .context("reading standard input")?;
    let lines: Vec<String> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
    let bar = ProgressBar::new(lines.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} posted {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if args.conn.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut created = Vec::new();
    for chunk in lines.chunks(100) {
        let batch: Vec<_> = chunk.iter().map(|l| one(l.clone())).collect();
        let c: Option<Created> = client.post(&path, &batch)?;
        let n = c.map_or(0, |c| {
            let n = c.messages.len();
            created.extend(c.messages);
            n
        });
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if args.conn.json {
        print_json(&created)?;
    } else {
        writeln!(out(), "posted {} messages in {}", created.len(), c.name)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `dispersy messages`.
#[derive(Debug, clap::Args)]
pub struct MessagesArgs {
    #[command(flatten)]
    conn: Conn,
    /// The community (id, id prefix or name; default: the only one).
    #[arg(long, short)]
    community: Option<String>,
    /// Only these message types (comma-separated).
    #[arg(long, short)]
    meta: Option<String>,
    /// Only this author (member id).
    #[arg(long)]
    member: Option<String>,
    /// Lowest global time.
    #[arg(long)]
    since: Option<u64>,
    /// Highest global time.
    #[arg(long)]
    until: Option<u64>,
    /// How many of the newest messages (all pages with --all).
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: usize,
    /// Every matching message, oldest first (pages through them).
    #[arg(long)]
    all: bool,
    /// Then keep printing new messages as they arrive (until Ctrl-C).
    #[arg(long, short)]
    follow: bool,
}

fn message_row(m: &MessageView) -> Vec<String> {
    let content = match (&m.text, &m.undone) {
        (Some(t), None) => t.replace('\n', " "),
        (Some(t), Some(_)) => format!("(undone) {}", t.replace('\n', " ")),
        (None, _) => format!("base64:{}", m.base64),
    };
    vec![
        m.global_time.to_string(),
        m.member.as_deref().map(short).unwrap_or_default(),
        m.meta.clone(),
        content,
    ]
}

/// `dispersy messages`.
pub fn messages(args: &MessagesArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client();
    let c = community(&client, args.community.as_deref())?;
    let path = format!("/api/v1/communities/{}/messages", c.id);
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(m) = &args.meta {
        query.push(("meta", m.clone()));
    }
    if let Some(m) = &args.member {
        query.push(("member", m.clone()));
    }
    if let Some(s) = args.since {
        query.push(("since", s.to_string()));
    }
    if let Some(u) = args.until {
        query.push(("until", u.to_string()));
    }
    let mut all = Vec::new();
    if args.all {
        let bar = ProgressBar::new(c.messages).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} messages read")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.clone();
            q.push(("limit", "1000".into()));
            if let Some(cur) = &cursor {
                q.push(("cursor", cur.clone()));
            }
            let page: MessagePage = client.get(&path, &q)?;
            bar.inc(page.messages.len() as u64);
            all.extend(page.messages);
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        bar.finish_and_clear();
    } else {
        let mut q = query.clone();
        q.push(("order", "desc".into()));
        q.push(("limit", args.limit.clamp(1, 1000).to_string()));
        let page: MessagePage = client.get(&path, &q)?;
        all = page.messages;
        all.reverse();
    }
    if args.conn.json {
        for m in &all {
            writeln!(out(), "{}", serde_json::to_string(m)?)?;
        }
    } else {
        let rows: Vec<Vec<String>> = all.iter().map(message_row).collect();
        table(&["TIME", "AUTHOR", "TYPE", "CONTENT"], &rows)?;
    }
    if args.follow {
        let q = vec![
            ("community", c.id.clone()),
            ("types", "message,undone".into()),
        ];
        for e in client.events(&q)? {
            let e = e?;
            match e.event.as_str() {
                "message" => {
                    let m: MessageView = serde_json::from_str(&e.data)?;
                    if args.conn.json {
                        writeln!(out(), "{}", e.data)?;
                    } else {
                        writeln!(out(), "{}", message_row(&m).join("  "))?;
                    }
                }
                "undone" if args.conn.json => writeln!(out(), "{}", e.data)?,
                "undone" => {
                    let v: serde_json::Value = serde_json::from_str(&e.data)?;
                    writeln!(out(), "undone: {}", v["id"].as_str().unwrap_or("?"))?;
                }
                "lagged" => writeln!(std::io::stderr(), "(missed some messages: {})", e.data)?,
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `dispersy peers`.
#[derive(Debug, clap::Args)]
pub struct PeersArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only this community (id, id prefix or name; default: all).
    #[arg(long, short)]
    community: Option<String>,
}

/// `dispersy peers`.
pub fn peers(args: &PeersArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client();
    let communities: Vec<CommunityView> = match &args.community {
        Some(c) => vec![community(&client, Some(c))?],
        None => {
            client
                .get::<CommunityList>("/api/v1/communities", &[])?
                .communities
        }
    };
    let mut lists = Vec::new();
    for c in &communities {
        let l: CandidateList =
            client.get(&format!("/api/v1/communities/{}/candidates", c.id), &[])?;
        lists.push((c.name.clone(), l));
    }
    if args.conn.json {
        print_json(&lists.iter().map(|(_, l)| l).collect::<Vec<_>>())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for (name, l) in &lists {
        for c in &l.candidates {
            rows.push(vec![
                format!("{name} {}", short(&l.community)),
                c.address.to_string(),
                c.category.clone(),
                c.member.as_deref().map(short).unwrap_or_default(),
                if c.tracker {
                    "tracker".into()
                } else {
                    String::new()
                },
                c.connection_type.clone(),
            ]);
        }
    }
    table(
        &[
            "COMMUNITY",
            "ADDRESS",
            "CATEGORY",
            "MEMBER",
            "ROLE",
            "CONNECTION",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `dispersy status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    conn: Conn,
    /// Show catch-up progress bars until every community has what its peers have.
    #[arg(long)]
    wait_sync: bool,
    /// With --wait-sync: give up after this many seconds (exit status 1). Without it, wait
    /// until done or Ctrl-C.
    #[arg(long, value_name = "SECONDS", requires = "wait_sync")]
    timeout: Option<u64>,
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `dispersy status`.
pub fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client();
    if args.wait_sync {
        return wait_sync(&client, args.timeout.map(Duration::from_secs));
    }
    let node: NodeView = client.get("/api/v1/node", &[])?;
    let list: CommunityList = client.get("/api/v1/communities", &[])?;
    let stats: StatsView = client.get("/api/v1/stats", &[])?;
    if args.conn.json {
        print_json(&json!({ "node": node, "communities": list.communities, "stats": stats }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut o = out();
    writeln!(o, "member      {}", node.member)?;
    writeln!(
        o,
        "udp         {}",
        node.listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        o,
        "wan         {} ({})",
        node.wan.map_or_else(|| "unknown".into(), |w| w.to_string()),
        node.connection_type
    )?;
    writeln!(o, "api         http://{}", node.api)?;
    writeln!(o, "uptime      {}s", node.uptime_secs)?;
    writeln!(
        o,
        "traffic     in {} pkts / {}, out {} pkts / {}, {} drops",
        stats.node.received.packets,
        bytes(stats.node.received.bytes),
        stats.node.sent.packets,
        bytes(stats.node.sent.bytes),
        stats.node.drops.values().sum::<u64>()
    )?;
    writeln!(o)?;
    drop(o);
    let rows: Vec<Vec<String>> = list
        .communities
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                short(&c.id),
                c.messages.to_string(),
                c.candidates.to_string(),
                c.global_time.to_string(),
                format!("{:.0}%", c.sync.fraction * 100.0),
                if c.founder {
                    "founder".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    table(
        &[
            "COMMUNITY",
            "ID",
            "MESSAGES",
            "CANDIDATES",
            "TIME",
            "SYNC",
            "ROLE",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Whether a community holds what its peers claim (an estimate is needed to know).
fn in_sync(c: &CommunityView) -> bool {
    c.sync.estimated && c.sync.held >= c.sync.estimate
}

/// Progress bars of every community's catch-up, until each holds what its peers claim (or
/// `timeout` passed: an error that says which communities are not there yet and why).
fn wait_sync(client: &Client, timeout: Option<Duration>) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:<20} {bar:40} {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut bars: Vec<(String, ProgressBar)> = Vec::new();
    loop {
        let list: CommunityList = client.get("/api/v1/communities", &[])?;
        let mut done = true;
        for c in &list.communities {
            let bar = match bars.iter().find(|(id, _)| *id == c.id) {
                Some((_, b)) => b.clone(),
                None => {
                    let b = multi.add(ProgressBar::new(1).with_style(style.clone()));
                    b.set_prefix(format!("{} {}", c.name, short(&c.id)));
                    bars.push((c.id.clone(), b.clone()));
                    b
                }
            };
            bar.set_length(c.sync.estimate.max(1));
            bar.set_position(c.sync.held);
            let activity = if c.sync.catching_up {
                ", catching up"
            } else if c.sync.reconciling {
                ", reconciling"
            } else {
                ""
            };
            bar.set_message(if c.sync.estimated {
                format!("from {} peers{activity}", c.sync.peers)
            } else if c.candidates > 0 {
                format!("(no estimate: no peer claims what it holds{activity})")
            } else {
                format!("(no estimate yet: no peers{activity})")
            });
            done &= in_sync(c);
        }
        if done {
            for (_, b) in &bars {
                b.finish();
            }
            return Ok(ExitCode::SUCCESS);
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            for (_, b) in &bars {
                b.abandon();
            }
            let waiting: Vec<String> = list
                .communities
                .iter()
                .filter(|c| !in_sync(c))
                .map(|c| {
                    if c.sync.estimated {
                        format!("{} holds {} of {}", c.name, c.sync.held, c.sync.estimate)
                    } else {
                        format!("{} has no estimate of what its peers hold", c.name)
                    }
                })
                .collect();
            anyhow::bail!("not in sync yet: {}", waiting.join("; "));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
