//! Unit tests of the checker: typing, defaults, and each kind of error.

use crate::{Config, Location, OptionSpec, OptionType, SectionSpec, Value, Vocabulary, load};

fn vocab() -> Vocabulary {
    let mut vocab = Vocabulary::core();
    vocab.add_section(
        SectionSpec::new("svc", "a test service")
            .option(OptionSpec::new("database", OptionType::DatabaseRef, "pool").required())
            .option(OptionSpec::new("port", OptionType::Port, "port").with_default(Value::Int(7)))
            .option(OptionSpec::new("address", OptionType::Address, "address"))
            .option(OptionSpec::new("root", OptionType::Directory, "root"))
            .option(OptionSpec::new("verbose", OptionType::Bool, "verbose"))
            .option(OptionSpec::new("name", OptionType::String, "name"))
            .option(OptionSpec::new(
                "peers",
                OptionType::List(Box::new(OptionType::Address)),
                "peers",
            ))
            .option(OptionSpec::new(
                "ports",
                OptionType::List(Box::new(OptionType::Port)),
                "ports",
            )),
    );
    vocab
}

fn ok(text: &str) -> Config {
    match load("c11n", text, &vocab()) {
        Ok(config) => config,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

fn errors(text: &str) -> String {
    match load("c11n", text, &vocab()) {
        Ok(config) => panic!("loaded without errors: {config:?}"),
        Err(errors) => errors.to_string(),
    }
}

const POOL: &str = "database P {}\n";

#[test]
fn types_values_and_applies_defaults() {
    let config = ok(&format!(
        "{POOL}uid = 0x10\nexecutes_as_root = YES\nidentity = 110\n\
         svc {{\n database = P\n address = \"::1\"\n verbose = off\n name = a b c\n \
         peers = {{10.0.0.1, \"::2\"}}\n ports = {{}}\n root = /srv\n}}\n"
    ));
    let globals = &config.globals;
    assert_eq!(globals.int("uid"), Some(16));
    assert_eq!(globals.bool("executes_as_root"), Some(true));
    assert_eq!(globals.str("identity"), Some("110"));
    assert_eq!(globals.bool("bypass_libc_syslog"), Some(false));
    assert_eq!(globals.get("gid"), None);
    assert_eq!(
        globals.location_of("uid"),
        Some(Location { line: 2, column: 7 })
    );
    assert_eq!(globals.location_of("bypass_libc_syslog"), None);
    let svc = config.section("svc").unwrap();
    assert_eq!(svc.int("port"), Some(7));
    assert_eq!(svc.str("address"), Some("::1"));
    assert_eq!(svc.bool("verbose"), Some(false));
    assert_eq!(svc.str("name"), Some("a b c"));
    let peers = [Value::Str("10.0.0.1".into()), Value::Str("::2".into())];
    assert_eq!(svc.list("peers"), Some(&peers[..]));
    assert_eq!(svc.list("ports"), Some(&[][..]));
    let pool = config.sections_named("database").next().unwrap();
    assert_eq!(pool.title.as_deref(), Some("P"));
    assert_eq!(pool.int("pool_min"), Some(2));
    assert_eq!(pool.int("pool_max"), Some(10));
}

#[test]
fn type_errors_quote_the_token() {
    let e = errors(&format!(
        "{POOL}uid = \"12\"\nexecutes_as_root = maybe\nsvc {{\n database = P\n port = 99999\n \
         address = localhost\n root = \"\"\n peers = 10.0.0.1\n ports = {{80, x}}\n verbose = {{}}\n}}\n"
    ));
    let expected = "\
c11n:2:7: error: `uid` expects an integer, found `\"12\"`
  help: write it without quotes: `uid = 12`
c11n:3:20: error: `executes_as_root` expects a boolean, found `maybe`
  help: use `true`, `false`, `yes`, `no`, `on` or `off`
c11n:6:9: error: `port` expects a port number (1-65535), found `99999`
  help: port numbers range from 1 to 65535
c11n:7:12: error: `address` expects an IP address, found `localhost`
  help: write an IPv4 address such as `192.0.2.1` or an IPv6 address such as `2001:db8::1`
c11n:8:9: error: `root` expects a directory path, found `\"\"`
c11n:9:10: error: `peers` expects a list of IP addresses, found `10.0.0.1`
  help: write a list in braces: `peers = {a, b}`
c11n:10:15: error: `ports` expects a list of port numbers (1-65535), found `x`
c11n:11:12: error: `verbose` expects a boolean, found a list";
    assert_eq!(e, expected);
}

#[test]
fn run_to_end_value_gets_a_hint() {
    assert_eq!(
        errors("uid = 1 ; one\n"),
        "c11n:1:7: error: `uid` expects an integer, found `1 ; one`\n  \
         help: the value runs to the end of the line because more text follows `1`; start a comment with `#`"
    );
}

#[test]
fn unknown_names_get_suggestions_or_pointers() {
    let e = errors(&format!(
        "{POOL}identiy = x\nport = 1\nsvc = 1\nsvcc {{}}\nsvc {{\n databse = P\n uid = 1\n zzz = 1\n}}\n"
    ));
    let expected = "\
c11n:2:1: error: unknown option `identiy`
  help: did you mean `identity`?
c11n:3:1: error: unknown option `port`
  help: `port` is an option of sections `database` and `svc`, not a top-level option
c11n:4:1: error: unknown option `svc`
  help: `svc` is a section: write `svc { ... }`
c11n:5:1: error: no loaded module or core section is named `svcc`
  help: did you mean `svc`?
c11n:6:1: error: section `svc` is missing required option `database`
  help: add a line `database = ...` with the title of a `database` section
c11n:7:2: error: unknown option `databse` in section `svc`
  help: did you mean `database`?
c11n:8:2: error: unknown option `uid` in section `svc`
  help: `uid` is a top-level option: move it out of section `svc`
c11n:9:2: error: unknown option `zzz` in section `svc`";
    assert_eq!(e, expected);
}

#[test]
fn database_references_resolve_anywhere_in_the_file() {
    ok("svc { database = LATER }\ndatabase LATER {}\n");
    assert_eq!(
        errors("database FOOFOO {}\nsvc { database = FOOFO }\n"),
        "c11n:2:18: error: no `database FOOFO { ... }` section is defined\n  help: did you mean `FOOFOO`?"
    );
    assert_eq!(
        errors("svc { database = X }\n"),
        "c11n:1:18: error: no `database X { ... }` section is defined"
    );
}

#[test]
fn duplicates_and_repeats() {
    let e = errors(&format!(
        "{POOL}{POOL}uid = 1\nuid = 2\nsvc {{ database = P }}\nsvc {{ database = P\ndatabase = P }}\n"
    ));
    let expected = "\
c11n:2:1: error: section `database P` is given twice: first on line 1
  help: give each `database` section a title of its own
c11n:4:1: error: duplicate option `uid`: first set on line 3
  help: remove one of the two settings
c11n:6:1: error: section `svc` is given twice: first on line 5
  help: merge the two into one `svc { ... }` section
c11n:7:1: error: duplicate option `database` in section `svc`: first set on line 6
  help: remove one of the two settings";
    assert_eq!(e, expected);
}

#[test]
fn titles_where_they_belong() {
    let e = errors("database {}\nsvc T { database = T }\ndatabase T {}\n");
    let expected = "\
c11n:1:1: error: section `database` needs a title, as in `database NAME { ... }`
c11n:2:5: error: section `svc` takes no title, found `T`
  help: write `svc { ... }`";
    assert_eq!(e, expected);
}

#[test]
fn syntax_errors_do_not_hide_check_errors_nor_invent_missing_ones() {
    // `database` is required in `svc` and `P` is undefined once its header is broken,
    // but neither is reported: the parser dropped lines.
    let e = errors("database P Q {\n}\nidentiy = x\nsvc {\n database P\n}\n");
    let expected = "\
c11n:1:12: error: expected `{` after `database P`, found `Q`
  help: a section header is `name {` or `name TITLE {`
c11n:3:1: error: unknown option `identiy`
  help: did you mean `identity`?
c11n:5:11: error: expected `=` after `database`, found `P`
  help: write `database = P`";
    assert_eq!(e, expected);
}

#[test]
fn check_alone_reports_what_load_does() {
    let doc = crate::parse("c11n", "uid = x\n").unwrap();
    let e = crate::check(&doc, &vocab()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "c11n:1:7: error: `uid` expects an integer, found `x`"
    );
}
