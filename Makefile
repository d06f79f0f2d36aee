# Quokka build. Plain make: no generator step, nothing to install beyond gcc,
# and every rule is visible in this one file.
#
#   make                 quokka and its tools in build/
#   make SAN=1           the same under ASan+UBSan in build/san/
#   make check           install dependencies, build, run every test
#   make run             install dependencies, build, boot the default guest
#   make fuzz            libFuzzer targets (clang) in build/fuzz/

SAN   ?= 0
FUZZ  ?= 0
ifeq ($(FUZZ),1)
CC    := clang
BUILD ?= build/fuzz
else ifeq ($(SAN),1)
BUILD ?= build/san
else
BUILD ?= build
endif

PKGS    := zlib libzstd liburing json-c slirp liblzma
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT      ?= -O2
CFLAGS   := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror \
            -Wno-unused-parameter -Wno-missing-field-initializers -Wno-format-truncation \
            -fno-strict-aliasing -Isrc $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  := -Wl,--as-needed $(EXTRA_LDFLAGS)
LDLIBS   := $(PKG_LIBS) -lpthread -lm

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -DQUOKKA_FUZZ
CFLAGS  += -Wno-unknown-warning-option   # clang lacks some gcc -Wno-* flags above
CFLAGS  += -Wno-gnu-variable-sized-type-not-at-end   # struct kvm_msrs + one entry, as the KVM API intends
LDFLAGS += -fsanitize=fuzzer,address,undefined
endif

# Everything under src/ except programs' entry points forms one static
# library; each program links only the objects it reaches.
LIB_SRCS  := $(shell find src -name '*.c' ! -path 'src/tools/*' ! -name main.c | sort)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libquokka.a

TOOLS     := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard src/tools/*/*.c)))))
TOOL_BINS := $(foreach t,$(TOOLS),$(BUILD)/quokka-$(t))
MAIN_BIN  := $(if $(wildcard src/main.c),$(BUILD)/quokka)

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/%)

ifeq ($(FUZZ),1)
all: $(FUZZ_BINS)
else
all: $(MAIN_BIN) $(TOOL_BINS) $(UNIT_BINS)
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/quokka: $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.SECONDEXPANSION:
# (no literal % here: make would put the stem in its place)
$(BUILD)/quokka-%: $$(addprefix $(BUILD)/,$$(subst .c,.o,$$(wildcard src/tools/$$*/*.c))) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test-%: $(BUILD)/tests/unit/test-%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/fuzz-%: $(BUILD)/tests/fuzz/fuzz-%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

setup:
	@./scripts/setup.sh

check: setup
	@./tests/run

run: setup
	@./scripts/run-default-guest.sh

fuzz:
	$(MAKE) FUZZ=1

clean:
	rm -rf build

.PHONY: all setup check run fuzz clean
-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)
