//! ServerKit's canonical sample, `/etc/server/pop/c11n`, copied verbatim from its
//! documentation: it must load, with exactly the values it shows.

use serverkit_c11n::{Value, load};

use crate::fixtures;
use crate::vocab::test_vocabulary;

#[test]
fn seed_pop_loads_with_its_values() {
    let path = fixtures().join("seed-pop.c11n");
    let text = std::fs::read_to_string(&path).expect("the seed fixture is part of the repository");
    let config = match load("seed-pop.c11n", &text, &test_vocabulary()) {
        Ok(config) => config,
        Err(errors) => panic!("the seed sample must load:\n{errors}"),
    };

    let globals = &config.globals;
    assert_eq!(globals.str("identity"), Some("pop"));
    assert_eq!(globals.bool("bypass_libc_syslog"), Some(true));
    assert_eq!(
        globals.str("libc_syslog_bypass_address"),
        Some("192.168.2.100")
    );
    assert_eq!(globals.bool("executes_as_root"), Some(true));
    assert_eq!(globals.int("uid"), Some(30000));
    assert_eq!(globals.int("gid"), Some(30000));

    let pools: Vec<_> = config.sections_named("database").collect();
    assert_eq!(pools.len(), 1);
    let pool = pools[0];
    assert_eq!(pool.title.as_deref(), Some("FOOFOO"));
    assert_eq!(pool.str("name"), Some("maildatabase"));
    assert_eq!(pool.str("user"), Some("mailuser"));
    assert_eq!(pool.str("password"), Some("sekret"));
    assert_eq!(pool.str("host"), Some("localhost"));
    assert_eq!(pool.int("pool_max"), Some(30));
    assert_eq!(pool.int("pool_min"), Some(2));

    let pop = config.section("pop").expect("the sample has a pop section");
    assert_eq!(pop.str("database"), Some("FOOFOO"));
    assert_eq!(pop.int("port"), Some(110));
    assert_eq!(pop.str("address"), Some("230.120.11.4"));
    assert_eq!(pop.int("backlog"), Some(32));
    assert_eq!(pop.int("min_sessions"), Some(10));
    assert_eq!(pop.int("max_sessions"), Some(2000));
    assert_eq!(pop.int("max_threads"), Some(30));
    assert_eq!(pop.int("min_threads"), Some(1));
    assert_eq!(
        pop.str("maildrop_query_format_string"),
        Some(
            r#"select maildrop from EMailUsers where EMailUsers.password="PASSWORD(%p)" and EMailUsers.user="%u""#
        )
    );
    let at = pop.location_of("maildrop_query_format_string").unwrap();
    assert_eq!((at.line, at.column), (30, 32));

    // Nothing else: the sections are exactly the two the file has, and every value
    // of `pop` was either written or defaulted.
    let names: Vec<_> = config.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["database", "pop"]);
    assert_eq!(pop.values.len(), 9);
    assert_eq!(pop.get("port"), Some(&Value::Int(110)));
}

#[test]
fn seed_pop_section_names() {
    let text = std::fs::read_to_string(fixtures().join("seed-pop.c11n")).unwrap();
    let doc = serverkit_c11n::parse("seed-pop.c11n", &text).unwrap();
    assert_eq!(doc.section_names(), ["database", "pop"]);
}
