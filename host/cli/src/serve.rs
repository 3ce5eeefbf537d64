//! `kiln serve`: load the named transforms, bind, print the address, serve.
//! Parsing and printing only; the server is `kiln_host::serve`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use kiln_host::serve::{Catalog, ServeOptions, Server, TransformSpec};
use kiln_host::{Engine, InstanceStrategy, ServingOptions};

use crate::registry::StoreArgs;

/// Serve transforms over HTTP: POST rows as JSON or Arrow IPC, get features back.
///
/// Each transform is served at /v1/transform/NAME. It comes from the store
/// (NAME@TAG or a version id, given as arguments), from a .kiln bundle
/// (`kiln export`), or from a plugin file with its parameters and state.
/// The store is opened only to resolve names and closed again, so
/// `kiln promote`, `kiln tag` and `kiln rollback` work while the server
/// runs; POST /v1/reload (or SIGHUP) then re-resolves every NAME@TAG and
/// switches the names whose tag moved. Bundles and plugin files are pinned.
///
/// The first line on stdout is `listening on http://ADDR`.
///
/// Routes:
///   POST /v1/transform/NAME   body: application/json (array of row objects),
///                             application/x-ndjson (one object per line) or
///                             application/vnd.apache.arrow.stream; reply in kind
///   GET  /v1/transforms       names, sources, plugin and version ids
///   POST /v1/reload           re-resolve NAME@TAG sources; lists what changed
///   GET  /healthz             {"status":"ok"}
///   GET  /metrics             Prometheus text: calls, errors, rows, latency
///   GET  /ui                  the dashboard (see `kiln ui --help`)
///
/// Errors are JSON {"error":{"kind","message"}}: 400 bad body, 404 unknown
/// name, 413 body too large, 415 content type, 422 input the plugin rejects,
/// 500 plugin trap or bad output, 503 busy.
///
/// Examples:
///   kiln fit standard_scaler.wasm --input train.csv --param columns=age --name scaler --tag prod
///   kiln serve scaler@prod --bind 127.0.0.1:8080
///   curl -s -H 'Content-Type: application/json' -d '[{"age":42}]' localhost:8080/v1/transform/scaler
///   kiln promote scaler --from staging --to prod && curl -s -X POST localhost:8080/v1/reload
///
///   kiln export scaler@prod -o scaler.kiln
///   kiln serve --transform scaler=scaler.kiln
///
///   kiln serve --transform 'city=hash_encode.wasm,params={"columns":["city"],"buckets":16}' \
///              --transform 'age=standard_scaler.wasm,state=scaler.state,params={"columns":["age"]}'
///   curl -s -H 'Content-Type: application/vnd.apache.arrow.stream' \
///        --data-binary @rows.arrows localhost:8080/v1/transform/city > features.arrows
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Transforms from the store: NAME@TAG (served as NAME), a version id,
    /// or ALIAS=NAME@TAG to pick the route name.
    #[arg(value_name = "NAME@TAG", required_unless_present = "transforms")]
    specs: Vec<String>,
    /// A transform from a file: NAME=BUNDLE.kiln, or
    /// NAME=PLUGIN.wasm[,state=FILE][,params=JSON]. Repeatable.
    #[arg(long = "transform", value_name = "NAME=FILE")]
    transforms: Vec<String>,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Largest request body, e.g. 64MiB or bytes.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = crate::parse_size)]
    max_body: usize,
    /// Warm instances kept ready per transform.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pool: u16,
    /// Log sampled calls of every name to DIR/NAME (Arrow IPC): check them
    /// with `kiln parity DIR/NAME`, or use them as live data in
    /// `kiln drift NAME@TAG --input DIR/NAME`. A log stops when a reload
    /// changes the version.
    #[arg(long, value_name = "DIR")]
    parity_log: Option<PathBuf>,
    /// With --parity-log: log one call in N (1 = every call).
    #[arg(long, value_name = "N", default_value_t = 100, requires = "parity_log",
          value_parser = clap::value_parser!(u64).range(1..))]
    parity_every: u64,
}

/// Load every transform, then serve until Ctrl-C or SIGTERM.
pub fn run(engine: &Engine, store: &StoreArgs, args: &ServeArgs) -> Result<()> {
    let mut specs = Vec::new();
    for s in &args.specs {
        specs.push(TransformSpec::from_store(s)?);
    }
    for s in &args.transforms {
        specs.push(TransformSpec::parse(s)?);
    }
    let options = serve_options(store, args.pool).with_max_body_bytes(args.max_body);
    let catalog = Catalog::load(engine, &specs, &options)?;
    for t in catalog.status() {
        eprintln!(
            "serving /v1/transform/{} = {} {} (version {}) from {} {}",
            t.name,
            t.plugin,
            t.plugin_version,
            &t.version_id[..12],
            t.source_kind,
            t.source,
        );
    }
    let mut logging = Vec::new();
    if let Some(dir) = &args.parity_log {
        for t in catalog.status() {
            let served = catalog
                .get(&t.name)
                .context("a listed name is served")?
                .clone();
            let log = dir.join(&t.name);
            served
                .start_parity_log(&log, Some(t.source.clone()), args.parity_every)
                .with_context(|| format!("cannot start the parity log of '{}'", t.name))?;
            eprintln!(
                "logging 1 call in {} of /v1/transform/{} to {}",
                args.parity_every,
                t.name,
                log.display()
            );
            logging.push((t.name, served));
        }
    }
    let server = Server::bind(args.bind, catalog, &options)?;
    // The first stdout line is the address (scripts and tests read it).
    println!("listening on http://{}", server.local_addr());
    std::io::stdout().flush()?;
    let served = server.run();
    for (name, t) in logging {
        if let Ok(Some(n)) = t.stop_parity_log() {
            eprintln!("parity log of '{name}': {n} calls logged");
        }
    }
    served?;
    Ok(())
}

/// Open the dashboard: names, tags, lineage, feature tables, usage, drift.
///
/// Starts the `kiln serve` HTTP server with every name of the store served
/// at its `prod` tag, or, for a name without one, at its newest tag (the
/// tag moved last), and prints the page's address. The page, GET /ui, is
/// one HTML document with its CSS and SVG inline: no scripts, nothing from
/// any other host. It shows
///   names      description, owner, tags -> version ids, number of versions
///   lineage    input files -> runs -> outputs, the 50 most recent runs
///   tables     each feature table's last `kiln materialize`, its age,
///              table version, transform version and rows
///   usage      per served route: calls, errors, rows, p50/p99 latency since
///              start; runs recorded per name
///   drift      the latest `kiln drift NAME@TAG` report of each name
/// Every page is read from the store as it is then (the store is opened
/// and closed per page); the names served are chosen at start: restart, or
/// POST /v1/reload to follow tag moves of the names already served.
///
/// Every `kiln serve` answers GET /ui too. The first line on stdout is
/// `dashboard at http://ADDR/ui`.
///
/// With access control on (`kiln access enable`), the page needs a token:
/// open http://ADDR/ui?token=TOKEN (a browser cannot send a header) or send
/// `Authorization: Bearer TOKEN`; it shows only the names the token's
/// principal may read. Anyone who reaches the address sees everything when
/// access control is off, so keep the default loopback address or put the
/// server behind your own proxy.
///
/// Examples:
///   kiln fit standard_scaler.wasm --input train.csv --param columns=age --name scaler
///   kiln promote scaler --from dev --to prod
///   kiln drift scaler@prod --input live.csv          (kept for the dashboard)
///   kiln ui                                          (then open http://127.0.0.1:8080/ui)
///   kiln ui --bind 0.0.0.0:9000 --store /srv/kiln
///   kiln access token create alice --as admin        (with access control on)
///   open 'http://127.0.0.1:8080/ui?token=kiln_…'
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct UiArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Warm instances kept ready per transform served.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pool: u16,
}

/// Serve every name of the store and the dashboard until Ctrl-C or SIGTERM.
pub fn ui(engine: &Engine, store: &StoreArgs, args: &UiArgs) -> Result<()> {
    let options = serve_options(store, args.pool);
    let (catalog, skipped) = Catalog::for_dashboard(engine, &options)?;
    for (name, e) in &skipped {
        eprintln!("warning: not serving '{name}' (the dashboard still shows it): {e}");
    }
    for t in catalog.status() {
        eprintln!(
            "serving /v1/transform/{} = {} (version {})",
            t.name,
            t.source,
            &t.version_id[..12],
        );
    }
    let access_on = catalog.access().enabled();
    let server = Server::bind(args.bind, catalog, &options)?;
    // The first stdout line is the address (scripts and tests read it).
    println!("dashboard at http://{}/ui", server.local_addr());
    std::io::stdout().flush()?;
    if access_on {
        eprintln!(
            "access control is on: open http://{}/ui?token=TOKEN with a token from `kiln access token create PRINCIPAL`",
            server.local_addr()
        );
    }
    server.run()?;
    Ok(())
}

/// The server's store and instance options: the store (waited for with
/// --wait, else at most 10 s), `pool` warm instances per transform.
fn serve_options(store: &StoreArgs, pool: u16) -> ServeOptions {
    ServeOptions::default()
        .with_store_dir(store.store.clone())
        .with_store_wait(match store.wait {
            true => None,
            false => Some(Duration::from_secs(10)),
        })
        .with_serving(
            ServingOptions::default().with_strategy(InstanceStrategy::Pool {
                depth: usize::from(pool),
            }),
        )
}
