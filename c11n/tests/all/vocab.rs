//! The vocabulary the fixtures are checked against: ServerKit's core, a `pop` section
//! mirroring the seed's, and a small `echo` section.

use serverkit_c11n::{OptionSpec, OptionType, SectionSpec, Value, Vocabulary};

pub fn test_vocabulary() -> Vocabulary {
    use OptionType::{Address, DatabaseRef, Integer, Port, String};
    let mut vocab = Vocabulary::core();
    vocab.add_section(
        SectionSpec::new("pop", "POP3 service.")
            .option(
                OptionSpec::new("database", DatabaseRef, "Pool holding the mail users.").required(),
            )
            .option(
                OptionSpec::new("port", Port, "TCP port to listen on.")
                    .with_default(Value::Int(110)),
            )
            .option(OptionSpec::new("address", Address, "Address to listen on."))
            .option(OptionSpec::new("backlog", Integer, "Listen backlog."))
            .option(OptionSpec::new(
                "min_sessions",
                Integer,
                "Sessions preallocated.",
            ))
            .option(OptionSpec::new(
                "max_sessions",
                Integer,
                "Most sessions at once.",
            ))
            .option(OptionSpec::new(
                "max_threads",
                Integer,
                "Most worker threads.",
            ))
            .option(OptionSpec::new(
                "min_threads",
                Integer,
                "Fewest worker threads.",
            ))
            .option(
                OptionSpec::new(
                    "maildrop_query_format_string",
                    String,
                    "Query returning the maildrop; %u is the user name, %p the password.",
                )
                .required(),
            ),
    );
    vocab.add_section(
        SectionSpec::new("echo", "Echo service.")
            .option(OptionSpec::new("address", Address, "Address to listen on.").required())
            .option(
                OptionSpec::new("port", Port, "TCP port to listen on.").with_default(Value::Int(7)),
            )
            .option(
                OptionSpec::new("backlog", Integer, "Listen backlog.").with_default(Value::Int(16)),
            )
            .option(
                OptionSpec::new("max_sessions", Integer, "Most sessions at once.")
                    .with_default(Value::Int(100)),
            ),
    );
    vocab
}
