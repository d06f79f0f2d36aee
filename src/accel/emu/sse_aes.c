/* AES-NI (AESENC, AESENCLAST, AESDEC, AESDECLAST, AESIMC, AESKEYGENASSIST)
 * per FIPS-197 and the SDM's instruction pages. The state is the XMM
 * register's 16 bytes in column-major order: byte i is row i%4, column i/4. */
#include <pthread.h>
#include "accel/emu/sse_exec.h"

static uint8_t sbox[256], inv_sbox[256];
static pthread_once_t sbox_once = PTHREAD_ONCE_INIT;

static uint8_t xtime(uint8_t x)
{
    return (uint8_t)((x << 1) ^ ((x & 0x80) ? 0x1b : 0));
}

static uint8_t gmul(uint8_t a, uint8_t b)
{
    uint8_t r = 0;
    while (b) {
        if (b & 1)
            r ^= a;
        a = xtime(a);
        b >>= 1;
    }
    return r;
}

/* S-box from the multiplicative inverse and the affine map. */
static void sbox_init(void)
{
    for (int x = 0; x < 256; x++) {
        uint8_t inv = 0;
        for (int y = 1; y < 256 && x; y++)
            if (gmul((uint8_t)x, (uint8_t)y) == 1) {
                inv = (uint8_t)y;
                break;
            }
        uint8_t s = inv;
        for (int k = 1; k < 5; k++)
            s ^= (uint8_t)((inv << k) | (inv >> (8 - k)));
        s ^= 0x63;
        sbox[x] = s;
        inv_sbox[s] = (uint8_t)x;
    }
}

static void shift_rows(uint8_t *st, bool inv)
{
    uint8_t t[16];
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 4; r++)
            t[r + 4 * c] = st[r + 4 * ((inv ? c - r + 4 : c + r) % 4)];
    memcpy(st, t, 16);
}

static void sub_bytes(uint8_t *st, bool inv)
{
    for (int i = 0; i < 16; i++)
        st[i] = inv ? inv_sbox[st[i]] : sbox[st[i]];
}

static void mix_columns(uint8_t *st, bool inv)
{
    static const uint8_t fwd[4] = { 2, 3, 1, 1 }, bwd[4] = { 14, 11, 13, 9 };
    const uint8_t *m = inv ? bwd : fwd;
    for (int c = 0; c < 4; c++) {
        uint8_t *col = st + 4 * c, t[4];
        for (int r = 0; r < 4; r++)
            t[r] = gmul(col[0], m[(4 - r) % 4]) ^ gmul(col[1], m[(5 - r) % 4]) ^
                   gmul(col[2], m[(6 - r) % 4]) ^ gmul(col[3], m[(7 - r) % 4]);
        memcpy(col, t, 4);
    }
}

static uint32_t sub_word(uint32_t w)
{
    return (uint32_t)sbox[w & 0xff] | (uint32_t)sbox[(w >> 8) & 0xff] << 8 |
           (uint32_t)sbox[(w >> 16) & 0xff] << 16 | (uint32_t)sbox[w >> 24] << 24;
}

/* 66 0F 38 DB..DF */
static void h_aes(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm k;
    sse_check(cpu);
    sse_get_rm(cpu, in, &k, 16, true);
    pthread_once(&sbox_once, sbox_init);
    x86_xmm *d = sse_reg(cpu, in->reg);
    uint8_t *st = d->b;
    switch (in->op) {
    case 0xdb:                     /* AESIMC */
        *d = k;
        mix_columns(st, true);
        return;
    case 0xdc: case 0xdd:          /* AESENC, AESENCLAST */
        shift_rows(st, false);
        sub_bytes(st, false);
        if (in->op == 0xdc)
            mix_columns(st, false);
        break;
    default:                       /* AESDEC, AESDECLAST */
        shift_rows(st, true);
        sub_bytes(st, true);
        if (in->op == 0xde)
            mix_columns(st, true);
        break;
    }
    d->q[0] ^= k.q[0];
    d->q[1] ^= k.q[1];
}

/* 66 0F 3A DF: AESKEYGENASSIST */
static void h_aeskeygen(struct x86_cpu *cpu, const struct x86_insn *in)
{
    x86_xmm s;
    sse_check(cpu);
    sse_get_rm(cpu, in, &s, 16, true);
    pthread_once(&sbox_once, sbox_init);
    uint32_t rcon = (uint8_t)in->imm, x1 = sub_word(s.d[1]), x3 = sub_word(s.d[3]);
    x86_xmm *d = sse_reg(cpu, in->reg);
    d->d[0] = x1;
    d->d[1] = ((x1 >> 8) | (x1 << 24)) ^ rcon;
    d->d[2] = x3;
    d->d[3] = ((x3 >> 8) | (x3 << 24)) ^ rcon;
}

void aes_register(struct x86_op_table *t)
{
    for (int op = 0xdb; op <= 0xdf; op++)
        x86_op_set(t, X86_MAP_0F38, X86_MP_66, op, h_aes);
    x86_op_set(t, X86_MAP_0F3A, X86_MP_66, 0xdf, h_aeskeygen);
}
