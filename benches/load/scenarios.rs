//! The scenarios, the world they run in, and the run that prints them.

use crate::client::{Call, Proto, Target};
use crate::common::bank_sim::{BankSim, Holder};
use crate::common::service::{Options, Service, TestBackend};
use crate::common::world::{World, NAME};
use crate::common::{resident_id, with_check_digit};
use crate::drive::{drive, MakeCall, Shape, Span};
use crate::stats::{self, Baseline, Bases, Measured};
use crate::{pg_reference, reference};
use crate::{Args, Rate};
use serde_json::{json, Value};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Cardholders known to the bank simulator, each with a signed binding.
const HOLDERS: u64 = 16;
/// Reveals per protocol: both runs stay under the hourly cap of 1000.
const REVEALS_PER_PROTO: u64 = 400;
/// Debit tokens per bound card.
const TOKENS_PER_CARD: u64 = 4;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A Luhn-valid PAN in a UnionPay range, unique per `seq`.
pub fn pan(seq: u64) -> String {
    with_check_digit(&format!("621799{:09}", seq % 1_000_000_000))
}

/// A valid resident ID number, unique per `seq` (up to 20 million).
pub fn id_number(seq: u64) -> String {
    let day = 1 + (seq / 1000) % 28;
    let month = 1 + (seq / 28_000) % 12;
    let year = 1950 + (seq / 336_000) % 60;
    resident_id(
        "110105",
        &format!("{year}{month:02}{day:02}"),
        (seq % 1000) as u16,
    )
}

pub fn phone(seq: u64) -> String {
    format!("139{:08}", seq % 100_000_000)
}

pub fn controls(max_uses: u64, per_tx: u64, cumulative: u64) -> Value {
    json!({
        "max_uses": max_uses, "per_transaction_limit": per_tx, "cumulative_limit": cumulative,
        "currency": "CNY", "valid_from": now() - 60, "valid_until": now() + 86_400,
        "channels": ["bank-a"], "merchants": ["M001"],
    })
}

pub struct Bench {
    pub world: World,
    /// Nodes b, c… on the same database (`--nodes`), beside the world's a.
    pub more_nodes: Vec<Service>,
    /// Stored cards (for token issue and reveal).
    pub cards: Vec<String>,
    /// Tokens to read.
    pub read_tokens: Vec<String>,
    /// Tokens of bound cards, for debits.
    pub debit_tokens: Vec<String>,
}

impl Bench {
    pub fn target(&self, role: &str, proto: Proto) -> Target {
        let keys = &self.world.service.keys;
        Target::new(
            self.world.service.addr,
            &keys.ca_cert(),
            &keys.client_cert(role),
            &keys.client_key(role),
            proto,
        )
        .spread_over(self.more_nodes.iter().map(|node| node.addr))
    }

    /// Every node's process.
    pub fn pids(&self) -> Vec<u32> {
        let nodes = std::iter::once(&self.world.service).chain(&self.more_nodes);
        nodes.filter_map(|node| node.pid()).collect()
    }
}

/// The service (limits raised for load: connections, reveals) and one bank
/// simulator, with `HOLDERS` signed bindings.
pub async fn setup(extra_config: &str, postgres: bool, nodes: usize) -> Bench {
    const NAMES: [&str; 3] = ["a", "b", "c"];
    let mut service = Service::prepare(Options {
        node_name: (nodes > 1).then(|| NAMES[0].to_owned()),
        reveals_per_hour: 1000,
        // The reveal row measures the reveal step alone, on a reason:
        // under dual control each reveal is two more audited writes by
        // two other calls (request, approval), which the bench's one-role
        // scenarios do not make.
        extra_limits: "reveal_dual_control = false\n".to_owned(),
        max_connections: 4096,
        extra_config: extra_config.to_owned(),
        backend: if postgres {
            TestBackend::Postgres
        } else {
            TestBackend::Sled
        },
        // As many connections as the HTTP/1.1 rows have clients.
        extra_postgres: "pool_size = 64\n".to_owned(),
        ..Options::default()
    });
    let holders: Vec<(String, String, String)> = (0..HOLDERS)
        .map(|i| {
            (
                with_check_digit(&format!("622202{:012}", 500 + i)),
                id_number(900_000 + i),
                phone(i),
            )
        })
        .collect();
    let rows: Vec<Holder<'_>> = holders
        .iter()
        .map(|(card_no, id_no, phone)| Holder {
            card_no,
            name: NAME,
            id_no,
            phone,
            credit: None,
        })
        .collect();
    let bank = BankSim::start(&service.keys, service.dir.path(), "bank", &rows, &[]);
    service.add_config(&format!(
        "[gateway]\nsms_carrier = \"{}\"\n{}",
        bank.endpoint(),
        bank.channel_config("bank-a")
    ));
    service.spawn();
    let more_nodes = NAMES[1..nodes]
        .iter()
        .map(|name| {
            let mut node = service.another_node(name);
            node.spawn();
            node
        })
        .collect();
    let world = World { service, bank };

    let mut debit_tokens = Vec::new();
    for (i, (card_no, id_no, phone)) in holders.iter().enumerate() {
        let user = format!("u{i}");
        let card = world.card(card_no).await;
        let identity = world.identity(id_no, phone).await;
        world.user_with_password(&user, &identity).await;
        let r = world.start(&user, &card, &identity, json!({})).await;
        assert_eq!(r.status, 201, "binding: {}", r.text());
        let binding = r.json()["binding_id"].as_str().expect("binding id").to_owned();
        let (code, _) = world.bank.last_code(phone).await;
        let r = world.confirm(&binding, &code).await;
        assert_eq!(r.status, 200, "confirm: {}", r.text());
        for _ in 0..TOKENS_PER_CARD {
            debit_tokens.push(
                world
                    .token_with(&card, controls(4_000_000_000, 1_000, 1_000_000_000_000))
                    .await,
            );
        }
    }
    let cards = vec![world.card(&pan(999_999_000)).await];
    let mut read_tokens = Vec::new();
    for _ in 0..256 {
        read_tokens.push(world.token_with(&cards[0], controls(10, 1_000, 10_000)).await);
    }
    Bench {
        world,
        more_nodes,
        cards,
        read_tokens,
        debit_tokens,
    }
}

pub struct Scenario {
    pub name: &'static str,
    /// What the row is reported as a share of.
    pub baseline: Baseline,
    /// `None`: the harness's `--seconds`.
    pub span: Option<Span>,
    pub role: &'static str,
    pub make: MakeCall,
    pub accept: fn(u16) -> bool,
}

fn created(status: u16) -> bool {
    status == 201
}

fn ok(status: u16) -> bool {
    status == 200
}

pub fn scenarios(bench: &Bench) -> Vec<Scenario> {
    let read_tokens = Arc::new(bench.read_tokens.clone());
    let debit_tokens = Arc::new(bench.debit_tokens.clone());
    let card = bench.cards[0].clone();
    let reveal_path = format!("/v1/cards/{card}/reveal");
    vec![
        Scenario {
            span: None,
            baseline: Baseline::Ceiling,
            name: "ceiling: GET /health",
            role: "monitor",
            make: Arc::new(|_| Call::get("/health".to_owned())),
            accept: ok,
        },
        Scenario {
            span: None,
            baseline: Baseline::Reference,
            name: "store card (durable)",
            role: "card-capture",
            make: Arc::new(|seq| {
                Call::post("/v1/cards", &json!({ "pan": pan(seq) }), Some(format!("c{seq}")))
            }),
            accept: created,
        },
        Scenario {
            span: None,
            baseline: Baseline::Reference,
            name: "store identity (durable)",
            role: "card-capture",
            make: Arc::new(|seq| {
                let body = json!({ "name": NAME, "id_number": id_number(seq), "phone": phone(seq) });
                Call::post("/v1/identities", &body, Some(format!("i{seq}")))
            }),
            accept: created,
        },
        Scenario {
            span: None,
            baseline: Baseline::Reference,
            name: "issue token",
            role: "orchestrator",
            make: Arc::new(move |seq| {
                let body = json!({ "card_ref": card, "controls": controls(10, 1_000, 10_000) });
                Call::post("/v1/tokens", &body, Some(format!("t{seq}")))
            }),
            accept: created,
        },
        Scenario {
            span: None,
            baseline: Baseline::Ceiling,
            name: "read token",
            role: "orchestrator",
            make: Arc::new(move |seq| {
                Call::get(format!(
                    "/v1/tokens/{}",
                    read_tokens[seq as usize % read_tokens.len()]
                ))
            }),
            accept: ok,
        },
        Scenario {
            span: None,
            baseline: Baseline::Reference,
            name: "full debit via bank-sim",
            role: "orchestrator",
            make: Arc::new(move |seq| {
                let token = &debit_tokens[seq as usize % debit_tokens.len()];
                let body = json!({
                    "token": token, "order_id": format!("o{seq}"), "amount": 1, "currency": "CNY",
                    "channel": "bank-a", "merchant": "M001", "expires_at": now() + 600,
                });
                Call::post("/v1/payments", &body, Some(format!("p{seq}")))
            }),
            accept: created,
        },
        Scenario {
            // The service caps reveals at 1000 per identity per hour (a
            // config bound, not a bench choice), so a fixed count is sent.
            span: Some(Span::Requests(REVEALS_PER_PROTO)),
            baseline: Baseline::Reference,
            name: "reveal (break-glass, one identity)",
            role: "break-glass",
            make: Arc::new(move |seq| {
                Call::post(
                    &reveal_path,
                    &json!({ "reason": "load harness reveal" }),
                    Some(format!("r{seq}")),
                )
            }),
            accept: ok,
        },
    ]
}

/// The durable-write reference's row (`reference`): the same call as
/// store card, to a server that does only the unavoidable work.
fn reference_scenario() -> Scenario {
    Scenario {
        span: None,
        baseline: Baseline::Ceiling,
        name: "reference: durable write",
        role: "card-capture",
        make: Arc::new(|seq| Call::post("/v1/cards", &json!({ "pan": pan(seq) }), None)),
        accept: created,
    }
}

/// One row of `scenario`, reported against its baseline.
async fn drive_row(
    scenario: &Scenario,
    target: &Target,
    shape: &Shape,
    span: Span,
    next: &Arc<AtomicU64>,
) -> Measured {
    let mut m = drive(
        scenario.name,
        target,
        shape,
        span,
        next,
        Arc::clone(&scenario.make),
        scenario.accept,
    )
    .await;
    m.baseline = scenario.baseline;
    m
}

pub async fn run(args: &Args) {
    let extra = if args.audit_sink {
        "[audit]\nsink_file = \"audit-sink.jsonl\"\n"
    } else {
        ""
    };
    let bench = setup(extra, args.postgres, args.nodes).await;
    let service = &bench.world.service;
    let reference = reference::spawn(&service.keys.dir, &service.dir.path().join("reference-data"));
    let next = Arc::new(AtomicU64::new(1));
    println!(
        "tokenvault load harness: service on {}, reference on {}, {} s per row after 1 s warm-up; \
         h1 = {} keep-alive connections, h2 = {} connections x {} streams; {}",
        service.addr,
        reference.addr,
        args.seconds,
        args.connections,
        args.h2_connections,
        args.h2_streams,
        match args.rate {
            None => "closed loop".to_owned(),
            Some(Rate::PerSecond(r)) => format!("offered load {r} req/s"),
            Some(Rate::HalfOfMax) => "closed loop, then half of each row's maximum".to_owned(),
        }
    );
    let mut results: Vec<(Measured, Bases)> = Vec::new();
    stats::header();
    for &proto in &args.protos {
        let (connections, streams) = match proto {
            Proto::Http1 => (args.connections, 1),
            Proto::Http2 => (args.h2_connections, args.h2_streams),
        };
        let shape = |pids: &[u32], rate: Option<f64>| Shape {
            proto,
            connections,
            streams,
            service_pids: pids.to_vec(),
            rate,
        };
        let mut bases = Bases {
            ceiling: f64::NAN,
            reference: f64::NAN,
        };
        let reference_target = Target::new(
            reference.addr,
            &service.keys.ca_cert(),
            &service.keys.client_cert("card-capture"),
            &service.keys.client_key("card-capture"),
            proto,
        );
        let mut rows = vec![(reference_scenario(), true)];
        rows.extend(scenarios(&bench).into_iter().map(|s| (s, false)));
        // The ceiling first, then the reference: every later row is a share of one.
        rows.swap(0, 1);
        for (scenario, on_reference) in rows {
            let is_base = on_reference || scenario.name.starts_with("ceiling");
            let wanted = args
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| scenario.name.contains(o.as_str())));
            if !wanted && !is_base {
                continue;
            }
            let (target, pid) = if on_reference {
                (reference_target.clone(), vec![reference.pid()])
            } else {
                (bench.target(scenario.role, proto), bench.pids())
            };
            let span = scenario.span.unwrap_or(Span::Seconds(args.seconds));
            let fixed = match (args.rate, scenario.span) {
                (Some(Rate::PerSecond(r)), None) => Some(r),
                _ => None,
            };
            let m = drive_row(&scenario, &target, &shape(&pid, fixed), span, &next).await;
            if scenario.name.starts_with("ceiling") {
                bases.ceiling = m.rate();
            }
            if on_reference {
                bases.reference = m.rate();
            }
            stats::row(&m, bases);
            let half = (m.rate() / 2.0).max(1.0);
            results.push((m, bases));
            if args.rate == Some(Rate::HalfOfMax) && scenario.span.is_none() && !is_base {
                let m = drive_row(&scenario, &target, &shape(&pid, Some(half)), span, &next).await;
                stats::row(&m, bases);
                results.push((m, bases));
            }
        }
    }
    let mut rows: Vec<Value> = results.iter().map(|(m, b)| m.json(*b)).collect();
    let mut report = json!({
        "machine": stats::machine(),
        "backend": if args.postgres { "postgres" } else { "sled" },
        "seconds_per_row": args.seconds,
    });
    if args.postgres {
        compare_postgres(args, &results, &mut rows, &mut report);
    }
    report["rows"] = Value::Array(rows);
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report).expect("JSON")).expect("write JSON");
    println!("JSON: {}", args.json.display());
}

/// pgbench on the same cluster, then each row as a share of it and of the
/// same row in the sled report.
fn compare_postgres(args: &Args, results: &[(Measured, Bases)], rows: &mut [Value], report: &mut Value) {
    let (tps, pgbench_cpu) = pg_reference::pgbench(args.connections, args.seconds);
    let sled = pg_reference::load_report(&args.compare);
    println!(
        "\nPostgreSQL: {}\npgbench, one 200-byte row inserted per transaction, {} clients: {tps:.0} tps, database CPU {pgbench_cpu:.0} us per transaction",
        pg_reference::describe(),
        args.connections
    );
    println!(
        "{:<36} {:>5} {:>10} {:>10} {:>10} {:>14}",
        "scenario", "proto", "req/s", "÷ pgbench", "÷ sled", "db cpu us/req"
    );
    for ((m, _), row) in results.iter().zip(rows.iter_mut()) {
        let sled_rate = sled
            .as_ref()
            .and_then(|r| pg_reference::sled_rate(r, &m.name, m.proto, m.offered));
        let of_sled = sled_rate.map_or(f64::NAN, |s| m.rate() / s);
        println!(
            "{:<36} {:>5} {:>10.0} {:>10.2} {:>10.2} {:>14.0}",
            m.label(),
            m.proto,
            m.rate(),
            m.rate() / tps,
            of_sled,
            m.database_cpu_us_per_request()
        );
        row["ratio_to_pgbench"] = json!(m.rate() / tps);
        row["ratio_to_sled"] = json!(sled_rate.map(|s| m.rate() / s));
    }
    report["pgbench_tps"] = json!(tps);
    report["pgbench_database_cpu_us_per_transaction"] = json!(pgbench_cpu);
    report["compared_with"] = json!(sled.map(|_| args.compare.display().to_string()));
}
