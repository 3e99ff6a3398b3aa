# Shorthands for the README's commands.
.PHONY: demo test bench dist

demo:
	go run ./cmd/demo

test:
	hack/test.sh

bench:
	hack/bench.sh

dist:
	hack/dist.sh
