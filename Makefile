# Builds what the library needs ahead of time: the BPF objects (CO-RE, so no
# kernel headers or compiler at run time) and the cffi extension.
PYTHON ?= python3
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_OBJ := $(patsubst bpf/%.bpf.c,dockertrace/bpfobj/%.bpf.o,$(BPF_SRC))
BPF_HDR := $(wildcard bpf/*.h)

.PHONY: all bpf cext vmlinux clean
all: bpf cext

bpf: $(BPF_OBJ)

# vmlinux.h is committed as a fallback; `make vmlinux` regenerates it from the
# build host's BTF. CO-RE relocations make the result portable either way.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h

dockertrace/bpfobj/%.bpf.o: bpf/%.bpf.c $(BPF_HDR)
	@mkdir -p dockertrace/bpfobj
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ibpf \
		-Wall -Werror -c $< -o $@
	llvm-strip -g $@ 2>/dev/null || true

# The extension's file name depends on the interpreter (its ABI tag).
CEXT_SO := dockertrace/_cext$(shell $(PYTHON) -c \
	'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')

cext: $(CEXT_SO)

$(CEXT_SO): $(wildcard cext/*.py cext/*.h) $(BPF_HDR)
	$(PYTHON) cext/build.py

clean:
	rm -rf dockertrace/bpfobj dockertrace/_cext*.so build cext/_build
