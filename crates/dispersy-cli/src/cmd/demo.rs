//! `dispersy demo`: a tracker and five nodes on loopback, in this process, in a microblog
//! community. The founder creates the community; the others find each other through the
//! tracker; nodes take turns posting; the terminal shows every node's copy of the posts
//! converging, and every node serves its own dashboard.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dispersy::community::spec::CommunitySpec;
use dispersy::crypto::PrivateKey;
use dispersy::ids::{CommunityId, GlobalTime, MessageId, MetaId};
use dispersy::node::{Config as NodeConfig, Event, Node};
use dispersy::wire::builtin::Permissions;
use dispersy_cli::daemon::Daemon;
use dispersy_cli::daemon::config::Config;
use dispersy_cli::daemon::hosting;
use dispersy_net::Driver;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::{Rng, SeedableRng};

/// The demo's community: posts (undoable) and a last-sync profile.
pub const MICROBLOG: &str = r#"
name = "microblog"

[[message]]
name = "post"
byte = 1
payload = "text"
undoable = true

[[message]]
name = "profile"
byte = 2
distribution = "last-sync"
history = 1
payload = "text"
"#;

const POST: MetaId = MetaId(1);

/// The node the founder makes a moderator.
const MODERATOR: usize = 1;

/// After this many posts the moderator undoes one.
const MODERATE_AT: usize = 6;

/// `<member hex>:<global time>` back into a message id.
fn parse_id(s: &str) -> Option<MessageId> {
    let (member, gt) = s.split_once(':')?;
    Some(MessageId {
        member: member.parse().ok()?,
        global_time: GlobalTime(gt.parse().ok()?),
    })
}

/// Longest the demo waits for discovery before it starts posting.
const DISCOVERY_LIMIT: Duration = Duration::from_secs(90);

/// Verified candidates of a community that are not trackers.
async fn verified_peers(d: &Daemon, community: CommunityId) -> usize {
    d.handle()
        .call(move |node, _| {
            node.candidates(&community)
                .iter()
                .filter(|c| !c.tracker && matches!(c.category.name(), "walk" | "stumble"))
                .count()
        })
        .await
        .unwrap_or(0)
}

const LINES: &[&str] = &[
    "hello from the edge of the network",
    "the walker found three peers already",
    "global time only goes up",
    "who signed this? (everyone did)",
    "no server was harmed in this demo",
    "bloom filters: probably correct",
    "punching holes in NATs since 2013",
    "a permission timeline walks into a bar",
    "it works on loopback, ship it",
    "my store is your store",
];

/// Arguments of `dispersy demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Nodes besides the tracker.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=32))]
    nodes: u16,
    /// Stop after posting for this many seconds (default: run until Ctrl-C). Discovery comes
    /// first and takes up to 90 s.
    #[arg(long)]
    duration: Option<u64>,
    /// Seconds between posts.
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
    /// First dashboard port: node i serves on PORT+i (default: any free ports).
    #[arg(long, default_value_t = 0)]
    api_port: u16,
    /// Keep the nodes' data directories here (default: a temporary directory, removed).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Exit with failure unless every post reached every node by the end.
    #[arg(long)]
    check: bool,
    /// Seed of the demo's choices (who posts what).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Which node holds which post, and when the post was created.
#[derive(Debug, Default)]
struct Ledger {
    created: BTreeMap<String, (usize, Instant, String)>,
    held: BTreeMap<String, BTreeSet<usize>>,
    converged: BTreeMap<String, Duration>,
    undone: BTreeMap<String, BTreeSet<usize>>,
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    super::init_logging(false, "warn");
    let rt = super::runtime().context("starting the runtime")?;
    rt.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let n = usize::from(args.nodes);
    let tmp = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("creating a temporary directory")?),
    };
    let root = args
        .data_dir
        .clone()
        .or_else(|| tmp.as_ref().map(|t| t.path().to_owned()))
        .context("no data directory")?;
    let tty = std::io::stdout().is_terminal();
    let say = |line: String| {
        let _ = writeln!(std::io::stdout(), "{line}");
    };

    // The tracker: a node that answers introduction-requests of any community.
    let tracker_key = PrivateKey::generate(&mut rand::rngs::OsRng);
    let tracker = Driver::start(
        Node::new_tracker(NodeConfig::default(), tracker_key),
        dispersy_net::Config {
            listen: vec!["127.0.0.1:0".parse()?],
            interface_scan: None,
            ..dispersy_net::Config::default()
        },
    )?;
    let tracker_addr = tracker.local_addrs()[0];

    let mut daemons = Vec::with_capacity(n);
    for i in 0..n {
        let mut config = Config {
            data_dir: Some(root.join(format!("node-{}", i + 1))),
            listen: vec!["127.0.0.1:0".parse()?],
            trackers: vec![tracker_addr.to_string()],
            log: "warn".into(),
            ..Config::default()
        };
        config.api.listen = format!(
            "127.0.0.1:{}",
            if args.api_port == 0 {
                0
            } else {
                args.api_port.saturating_add(u16::try_from(i)?)
            }
        )
        .parse()?;
        daemons.push(Daemon::start(config).await?);
    }

    // The founder creates the community; everyone else joins with its description.
    let spec = CommunitySpec::from_toml(MICROBLOG)?;
    let community = hosting::create(daemons[0].state(), spec)
        .await
        .map_err(|e| anyhow::anyhow!("creating the community: {e}"))?;
    let joined = daemons[0]
        .state()
        .hosted(&community)
        .and_then(|h| h.spec.as_deref().cloned())
        .context("the founder does not host the community")?;
    for d in &daemons[1..] {
        if d.state().hosted(&community).is_none() {
            hosting::join(d.state(), joined.clone())
                .await
                .map_err(|e| anyhow::anyhow!("joining: {e}"))?;
        }
    }

    say(format!(
        "dispersy demo: a tracker at {tracker_addr} and {n} nodes in community microblog {}",
        &community.to_hex()[..8]
    ));
    for (i, d) in daemons.iter().enumerate() {
        say(format!(
            "  node {}  udp {}  dashboard {}",
            i + 1,
            d.udp_addrs()[0],
            d.dashboard_url()
        ));
    }
    say(format!(
        "posting every {:.1} s; {}",
        args.interval,
        match args.duration {
            Some(s) => format!("stopping after {s} s"),
            None => "Ctrl-C stops".into(),
        }
    ));

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let multi = MultiProgress::with_draw_target(if tty {
        ProgressDrawTarget::stdout()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{prefix} {bar:30.cyan/blue} {pos:>3}/{len:<3} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bars: Vec<ProgressBar> = (0..n)
        .map(|i| {
            let b = multi.add(ProgressBar::new(0).with_style(style.clone()));
            b.set_prefix(format!("node {:<2}", i + 1));
            b
        })
        .collect();
    let log = {
        let multi = multi.clone();
        move |line: String| {
            if tty {
                let _ = multi.println(line);
            } else {
                let _ = writeln!(std::io::stdout(), "{line}");
            }
        }
    };

    // Every node's events: mark the posts it holds.
    for (i, d) in daemons.iter().enumerate() {
        let mut events = d.handle().subscribe();
        let ledger = ledger.clone();
        let log = log.clone();
        tokio::spawn(async move {
            loop {
                let e = match events.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                if let Event::Undone { message, .. } = &e
                    && i != MODERATOR
                {
                    let key = format!("{}:{}", message.member.to_hex(), message.global_time.0);
                    let mut l = ledger
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let seen = l.undone.entry(key).or_default();
                    if seen.insert(i) && seen.len() == n - 1 {
                        log(format!(
                            "  \u{2713} the undo reached all {} other nodes",
                            n - 1
                        ));
                    }
                }
                if let Event::Message(m) = e
                    && m.meta == POST
                    && let Some(id) = m.id()
                {
                    let key = format!("{}:{}", id.member.to_hex(), id.global_time.0);
                    let mut l = ledger
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let count = {
                        let holders = l.held.entry(key.clone()).or_default();
                        holders.insert(i);
                        holders.len()
                    };
                    if count == n
                        && let Some((author, at, _)) = l.created.get(&key).cloned()
                        && !l.converged.contains_key(&key)
                    {
                        let took = at.elapsed();
                        l.converged.insert(key, took);
                        log(format!(
                            "  \u{2713} node {}'s post reached all {n} nodes in {} ms",
                            author + 1,
                            took.as_millis()
                        ));
                    }
                }
            }
        });
    }

    // Profiles (last-sync, history 1): each node says who it is.
    for (i, d) in daemons.iter().enumerate() {
        let payload = dispersy::community::payload::Layout::Text
            .encode(format!("node {} of the demo", i + 1).as_bytes())?;
        d.handle()
            .create_message(community, MetaId(2), payload, Vec::new())
            .await?;
    }

    let started = Instant::now();
    let stop = super::termination();
    tokio::pin!(stop);

    // Discovery: the walk (through the tracker) until every node has verified every other one
    // (and the tracker). Until Bloom-filter sync runs, a post reaches only the author's
    // verified candidates.
    log("discovering peers through the tracker...".into());
    let want = n as u64 - 1;
    for b in &bars {
        b.set_length(want);
    }
    loop {
        let mut all = true;
        for (i, d) in daemons.iter().enumerate() {
            let peers = verified_peers(d, community).await as u64;
            bars[i].set_position(peers.min(want));
            bars[i].set_message(format!("{peers} verified peers"));
            all &= peers >= want;
        }
        let now = Instant::now();
        if all || now >= started + DISCOVERY_LIMIT {
            log(format!(
                "{} after {:.1} s",
                if all {
                    "every node verified every other"
                } else {
                    "discovery still going on"
                },
                started.elapsed().as_secs_f64()
            ));
            break;
        }
        tokio::select! {
            () = &mut stop => return finish(daemons, tracker, tmp).await,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let interval = Duration::from_secs_f64(args.interval.clamp(0.05, 3600.0));
    // Moderation through the permission system: the founder (node 1) makes node 2 a moderator
    // (undo on posts), now that the nodes reach each other; node 2 will undo one of another
    // node's posts.
    let moderator = MODERATOR;
    let moderator_key = daemons[moderator]
        .handle()
        .call(|n, _| n.public_key().clone())
        .await?;
    let grants = vec![(POST, Permissions::UNDO)];
    daemons[0]
        .handle()
        .call(move |n, now| n.authorize(now, community, &moderator_key, &grants))
        .await??;
    log(format!(
        "node 1 (the founder) made node {} a moderator: it may undo others' posts",
        moderator + 1
    ));

    let posting = Instant::now();
    let deadline = args.duration.map(|s| posting + Duration::from_secs(s));
    let mut next_post = posting;
    let mut posted = 0usize;
    let mut moderated = false;
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if posted == MODERATE_AT && !moderated {
            moderated = true;
            let victim = {
                let l = ledger
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                l.created
                    .iter()
                    .filter(|(_, (author, _, _))| *author != moderator)
                    .max_by_key(|(_, (_, at, _))| *at)
                    .map(|(k, (author, _, text))| (k.clone(), *author, text.clone()))
            };
            if let Some((key, author, text)) = victim
                && let Some(id) = parse_id(&key)
            {
                match daemons[moderator]
                    .handle()
                    .call(move |n, now| n.undo(now, community, id))
                    .await?
                {
                    Ok(_) => log(format!(
                        "node {} (moderator) undid node {}'s post: {text}",
                        moderator + 1,
                        author + 1
                    )),
                    Err(e) => log(format!("node {} could not undo: {e}", moderator + 1)),
                }
            }
        }
        if now >= next_post {
            let author = rng.gen_range(0..n);
            let line = LINES[rng.gen_range(0..LINES.len())];
            posted += 1;
            let text = format!("#{posted} {line}");
            let payload = dispersy::community::payload::Layout::Text.encode(text.as_bytes())?;
            match daemons[author]
                .handle()
                .create_message(community, POST, payload, Vec::new())
                .await
            {
                Ok(d) => {
                    if let Some(id) = d.id() {
                        let key = format!("{}:{}", id.member.to_hex(), id.global_time.0);
                        let mut l = ledger
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        l.created.insert(key.clone(), (author, now, text.clone()));
                        l.held.entry(key).or_default().insert(author);
                    }
                    log(format!("node {} posts: {text}", author + 1));
                }
                Err(e) => log(format!("node {} could not post: {e}", author + 1)),
            }
            next_post = now + interval;
        }
        refresh(&daemons, community, &ledger, &bars).await;
        let wake = next_post
            .min(deadline.unwrap_or(next_post))
            .min(now + Duration::from_millis(250));
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
    }
    // A moment for the last posts to arrive, then the summary.
    if args.duration.is_some() {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    refresh(&daemons, community, &ledger, &bars).await;
    for b in &bars {
        b.abandon();
    }
    let summary = {
        let l = ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut times: Vec<Duration> = l.converged.values().copied().collect();
        times.sort();
        let total = l.created.len();
        let pct = |p: usize| times.get((times.len() * p / 100).min(times.len().saturating_sub(1)));
        (total, times.len(), pct(50).copied(), times.last().copied())
    };
    let (total, converged, median, max) = summary;
    let ms =
        |d: Option<Duration>| d.map_or_else(|| "-".into(), |d| format!("{} ms", d.as_millis()));
    say(format!(
        "{total} posts, {converged} reached all {n} nodes (median {}, slowest {}) in {:.0} s",
        ms(median),
        ms(max),
        posting.elapsed().as_secs_f64()
    ));
    finish(daemons, tracker, tmp).await?;
    Ok(if args.check && converged < total {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Stops every node and the tracker, and removes a temporary data directory.
async fn finish(
    daemons: Vec<Daemon>,
    tracker: Driver,
    tmp: Option<tempfile::TempDir>,
) -> anyhow::Result<ExitCode> {
    for d in daemons {
        d.shutdown().await?;
    }
    tracker.shutdown().await?;
    drop(tmp);
    Ok(ExitCode::SUCCESS)
}

/// Updates each node's bar: posts held of posts created, and its verified candidates.
async fn refresh(
    daemons: &[Daemon],
    community: CommunityId,
    ledger: &Arc<Mutex<Ledger>>,
    bars: &[ProgressBar],
) {
    let (created, held): (u64, Vec<u64>) = {
        let l = ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let created = l.created.len() as u64;
        let held = (0..daemons.len())
            .map(|i| {
                l.created
                    .keys()
                    .filter(|k| l.held.get(*k).is_some_and(|h| h.contains(&i)))
                    .count() as u64
            })
            .collect();
        (created, held)
    };
    for (i, d) in daemons.iter().enumerate() {
        let peers = verified_peers(d, community).await;
        bars[i].set_length(created);
        bars[i].set_position(held[i]);
        bars[i].set_message(format!("posts  {peers} peers"));
    }
}
