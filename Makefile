# Shorthands for the README's commands.
.PHONY: demo test bench dist boot-demo

demo:
	go run ./cmd/demo

test:
	hack/test.sh

bench:
	hack/bench.sh

dist:
	hack/dist.sh

# One Instance's serial console as it boots under libvirt and QEMU (docs/boot.md); as root, with hack/test.sh's
# boot packages installed.
boot-demo:
	BOOT_DEMO=1 go test -count=1 -run '^TestBootDemo$$' -v ./test/boot
