# Top-level build: `make` builds criu/criu, `make test` runs the whole suite,
# `make install` installs under $(PREFIX).
PREFIX ?= /usr/local
CXX ?= g++
CC ?= gcc
PYTHON ?= /usr/bin/python3

BUILD := build
PROTOS := $(wildcard images/*.proto)
PB_C := $(patsubst images/%.proto,$(BUILD)/images/%.pb-c.c,$(PROTOS))
PB_H := $(PB_C:.c=.h)
PB_O := $(PB_C:.c=.o)
CRIU_SRCS := $(wildcard criu/*.cpp)
CRIU_OBJS := $(patsubst criu/%.cpp,$(BUILD)/criu/%.o,$(CRIU_SRCS))
DEPFLAGS = -MMD -MP

PLUGIN_DIR ?= $(PREFIX)/lib/criu
CPPFLAGS += -Icriu/include -Iimages -I$(BUILD)/images -D_GNU_SOURCE -DPLUGIN_DIR='"$(PLUGIN_DIR)"'
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++20 -Wall -Wextra -Wno-missing-field-initializers -fno-exceptions
CFLAGS ?= -O2 -g
# linked in, as libstdc++: two shared libraries fewer for every criu to load
# and for a restored task to unmap (10 mappings)
LDLIBS += -Wl,-Bstatic -lprotobuf-c -lz -Wl,-Bdynamic

# The restorer blob: freestanding, position independent, no relocations.
RST_CFLAGS := -O2 -Wall -Wextra -ffreestanding -fno-stack-protector -fno-builtin -fpie \
	-fvisibility=hidden -fno-asynchronous-unwind-tables -fcf-protection=none \
	-mno-red-zone -mgeneral-regs-only -Icriu/include

# The mm-template plugin (C++, only criu-plugin.h from the core).
MMT_SRCS := $(wildcard plugins/mmtemplate/*.cpp)
MMT_SO := plugins/mmtemplate/mmtemplate.so

all: deps criu/criu $(MMT_SO) tests

# The plugin carries its own libstdc++ too (not exported: --exclude-libs):
# loading the shared one cost every --mm-template restore 0.8 ms.
$(MMT_SO): $(MMT_SRCS) $(wildcard plugins/mmtemplate/*.h) criu/include/criu-plugin.h
	$(CXX) $(CXXFLAGS) -fPIC -shared -Icriu/include -static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL \
		-o $@ $(MMT_SRCS)

deps:
	@sh scripts/install-deps.sh

# libstdc++ is linked in: loading and relocating its shared copy was half of
# criu's start-up (0.5 of 1.4 ms here), which every CLI restore pays. Its
# symbols stay private (only criu.dynlist is exported), so a C++ plugin
# uses the shared libstdc++ it was linked against.
criu/criu: $(PB_O) $(CRIU_OBJS) $(BUILD)/restorer-blob.o criu/criu.dynlist
	$(CXX) $(LDFLAGS) -static-libstdc++ -static-libgcc -Wl,--dynamic-list=criu/criu.dynlist -o $@ \
		$(filter %.o,$^) $(LDLIBS)

$(BUILD)/images/%.pb-c.c $(BUILD)/images/%.pb-c.h: images/%.proto
	@mkdir -p $(BUILD)/images
	protoc-c --c_out=$(BUILD)/images -Iimages $<

$(BUILD)/images/%.pb-c.o: $(BUILD)/images/%.pb-c.c | $(PB_H)
	$(CC) $(CFLAGS) $(CPPFLAGS) -c -o $@ $<

$(BUILD)/criu/%.o: criu/%.cpp | $(PB_H)
	@mkdir -p $(BUILD)/criu
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/restorer/%.o: criu/restorer/%.c criu/include/restorer-args.h criu/restorer/rst-syscall.h
	@mkdir -p $(BUILD)/restorer
	$(CC) $(RST_CFLAGS) -c -o $@ $<

$(BUILD)/restorer/entry.o: criu/restorer/entry.S
	@mkdir -p $(BUILD)/restorer
	$(CC) -c -o $@ $<

$(BUILD)/restorer.bin: $(BUILD)/restorer/entry.o $(BUILD)/restorer/restorer.o criu/restorer/restorer.lds
	ld -nostdlib -static -pie --no-dynamic-linker -T criu/restorer/restorer.lds -o $(BUILD)/restorer.elf \
		$(BUILD)/restorer/entry.o $(BUILD)/restorer/restorer.o
	@if readelf -r $(BUILD)/restorer.elf | grep -q R_X86; then \
		echo "restorer blob needs relocations: it must be position independent" >&2; exit 1; fi
	objcopy -O binary $(BUILD)/restorer.elf $@

$(BUILD)/restorer-blob.o: criu/restorer/blob.S $(BUILD)/restorer.bin
	$(CC) -c -DBLOB_PATH='"$(BUILD)/restorer.bin"' -o $@ criu/restorer/blob.S

tests:
	@$(MAKE) -s -C test/zdtm

test: all
	$(PYTHON) -m pytest -q test/zdtm

install: criu/criu $(MMT_SO)
	install -D -m 0755 criu/criu $(DESTDIR)$(PREFIX)/sbin/criu
	install -D -m 0644 criu/include/criu-plugin.h $(DESTDIR)$(PREFIX)/include/criu/criu-plugin.h
	install -d $(DESTDIR)$(PLUGIN_DIR)
	install -m 0644 $(MMT_SO) $(DESTDIR)$(PLUGIN_DIR)/
	install -D -m 0644 Documentation/criu.8 $(DESTDIR)$(PREFIX)/share/man/man8/criu.8
	install -D -m 0755 scripts/criu-sandbox $(DESTDIR)$(PREFIX)/sbin/criu-sandbox
	install -D -m 0644 Documentation/criu-sandbox.8 $(DESTDIR)$(PREFIX)/share/man/man8/criu-sandbox.8

clean:
	rm -rf $(BUILD) criu/criu $(MMT_SO)
	@$(MAKE) -s -C test/zdtm clean

.PHONY: all deps tests test install clean
.SECONDARY: $(PB_C) $(PB_H)
-include $(CRIU_OBJS:.o=.d)
