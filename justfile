# Day-to-day recipes; each is one command of ./dev, which works without just.

# run the echo demo personality
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

# build the API docs
doc:
    ./dev doc
