/* Decoder and decoded-code cache of the emulated CPU (decode.c, codecache.c). */
#ifndef QUOKKA_ACCEL_EMU_DECODE_H
#define QUOKKA_ACCEL_EMU_DECODE_H

#include "accel/emu/cpu_int.h"

enum { X86_DEC_64 = 1, X86_DEC_32 = 2 };        /* code size: 64, 32, else 16 */
/* x86_insn.flags */
#define X86_DF_END 0x01u         /* last instruction of a block */
#define X86_DF_MANDATORY 0x02u   /* handler came from a 66/F2/F3 column */

const struct x86_op_table *x86_ops(void);
int x86_decode(const uint8_t *bytes, unsigned avail, unsigned mode, struct x86_insn *in);
bool x86_lock_ok(const struct x86_insn *in);

/* A run of decoded instructions from one guest-physical page. */
#define X86_BLOCK_MAX 32
struct x86_block {
    struct x86_block *next;      /* hash chain */
    uint64_t pa;                 /* physical address of the first byte */
    uint32_t gen;                /* page generation when decoded */
    _Atomic uint32_t *genp;      /* the page's generation word */
    /* successor links (last two targets), checked before the jump cache */
    uint64_t succ_la[2], succ_key[2];
    struct x86_block *succ[2];
    void *jit[2];                /* translated code per privilege class (jit.h), or NULL */
    uint32_t runs;               /* interpreted runs so far (the JIT's hotness count) */
    uint8_t mode;                /* X86_DEC_* */
    uint8_t n;
    /* The last instruction may cross into the next page (a "tail"): it
     * counts only while the block's linear page + 4096 maps to tail_pa
     * in the fetch TLB and that page's generation is still tail_gen;
     * otherwise the block ends before it (x86_block_tail_ok). */
    bool tail;
    uint32_t tail_gen;
    _Atomic uint32_t *tail_genp;
    uint64_t tail_pa;
    struct x86_insn insn[];
};

struct x86_code_cache *x86_cc_new(void);
void x86_cc_free(struct x86_code_cache *cc);
/* Block starting at pa in mode, decoded from host (page at pa & ~0xfff),
 * or NULL if pa's page cannot be cached (MMIO, outside the tracked range).
 * la is where it runs from: a tail is decoded through la's next page. */
struct x86_block *x86_cc_lookup(struct x86_cpu *cpu, uint64_t la, uint64_t pa, unsigned mode,
                                const uint8_t *host_page);

/* Page-crossing instructions (they belong to no block), cached per vCPU.
 * key is the jump cache's: (jc_gen << 3) | (tlb_user << 2) | mode.
 * x86_cc_crossing: the instruction at la if decoded under this very key
 * and neither page written since; NULL otherwise.
 * x86_cc_crossing_remapped: the same under an older jc_gen (a TLB flush
 * since), if la's page is pa's and the next page still maps where it did
 * (translating it, which may fault).
 * x86_cc_crossing_fill: decode the instruction at la that does not fit in
 * its RAM page (pa, host_page) and cache it when both pages can hold code;
 * else decode it into *tmp. Either way the returned instruction stays
 * valid until the next x86_cc_crossing_fill. */
const struct x86_insn *x86_cc_crossing(struct x86_cpu *cpu, uint64_t la, uint64_t key);
const struct x86_insn *x86_cc_crossing_remapped(struct x86_cpu *cpu, uint64_t la, uint64_t key,
                                                uint64_t pa);
const struct x86_insn *x86_cc_crossing_fill(struct x86_cpu *cpu, uint64_t la, uint64_t key,
                                            uint64_t pa, const uint8_t *host_page,
                                            struct x86_insn *tmp);

/* Translated code for b (compiling it now if b is hot enough), or NULL
 * to interpret it. */
void *x86_cc_jit(struct x86_cpu *cpu, struct x86_block *b);

/* Per-page code generation (bit 0: page holds decoded code), NULL if untracked. */
_Atomic uint32_t *x86_emu_page_gen(struct x86_emu *emu, uint64_t pa, bool create);
/* The code epoch (moves on whenever a page first holds decoded code: write
 * tags must go), for a cheap check in the run loop and translated code. */
_Atomic uint64_t *x86_emu_code_epoch_ptr(struct x86_emu *emu);

#endif
