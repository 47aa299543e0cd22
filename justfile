# Day-to-day recipes; each is one command of ./dev, which works without just.

# run the shttp demo personality (http://127.0.0.1:8080/)
run:
    ./dev demo

# run every test
test:
    ./dev test

# rustfmt check and clippy -D warnings
lint:
    ./dev lint

# format the code
fmt:
    ./dev fmt

# run the benchmarks
bench:
    ./dev bench

# hot swap latency and throughput dip, with and without the compile cache
bench-swap:
    ./dev bench-swap

# shttp against nginx with wrk (release build)
bench-http:
    ./dev bench-http

# Dovecot and pop side by side: logins/s, RETR throughput, memory per idle session
bench-pop:
    ./dev bench-pop

# run the pop personality on the embedded database (demo user demo/demo, port 1110)
pop-demo:
    ./dev pop-demo

# run the fuzz targets, SECONDS each (docs/fuzzing.md)
fuzz SECONDS="60" *TARGETS:
    ./dev fuzz {{SECONDS}} {{TARGETS}}

# build the API docs
doc:
    ./dev doc
