//! contract-next: a test-only module built against `serverkit:module@2.0.0`, a major
//! version this host does not speak, so tests can see the version rule refuse it. Its
//! WIT is inline on purpose: a stand-in for a future contract, not a copy of `wit/`.

wit_bindgen::generate!({
    inline: "
        package serverkit:module@2.0.0;

        interface log {
            enum level { trace, debug, info, warn, error }
            log: func(level: level, message: string);
        }

        world module {
            import log;
            export hello: func();
        }
    ",
});

struct Next;

impl Guest for Next {
    fn hello() {
        serverkit::module::log::log(serverkit::module::log::Level::Info, "hello from the future");
    }
}

export!(Next);
