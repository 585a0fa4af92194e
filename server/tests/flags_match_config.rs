//! Every flag of `fathom serve` and `fathom route` sets a key of its
//! configuration struct (issue 27: the flags were a second hand-kept list
//! beside the struct). Read off the sources: each `.set("key", ...)` in the
//! subcommand must name a field serde knows, so a renamed key cannot leave
//! a flag that sets nothing (the layers would refuse it only at run time).

use fathom_server::ops::layers::keys;

fn keys_set(source: &str) -> Vec<String> {
    source
        .match_indices(".set(\"")
        .map(|(i, m)| source[i + m.len()..].chars().take_while(|&c| c != '"').collect())
        .collect()
}

fn check(source: &str, fields: &[String], what: &str) {
    let keys = keys_set(source);
    assert!(keys.len() >= 5, "{what}: found only {keys:?}");
    for k in keys {
        let top = k.split('.').next().unwrap_or_default();
        assert!(fields.iter().any(|f| f == top), "{what}: flag sets {k:?}, which is not a configuration key");
    }
}

#[test]
fn serve_and_route_flags_set_configuration_keys() {
    let serve = include_str!("../src/cli/serve.rs");
    check(serve, &keys::<fathom_server::shard::config::Config>(), "fathom serve");
    let route = include_str!("../src/cli/route.rs");
    check(route, &keys::<fathom_server::router::config::RawRouterConfig>(), "fathom route");
}
