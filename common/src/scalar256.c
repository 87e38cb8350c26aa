/* Constant-time arithmetic mod a 256-bit modulus (see scalar256.h).
 *
 * Multiplication is Montgomery's (CIOS, 32-bit limbs): mont(a, b) =
 * a*b/2^256 mod q, then mont(., 2^512 mod q) = a*b mod q. Every conditional
 * subtraction is a mask select, never a branch. */
#include "scalar256.h"

#include <string.h>

#include "duosign/mem.h"

static void duo__load(uint32_t l[8], const uint8_t b[32]) {
    for (int i = 0; i < 8; i++) {
        const uint8_t *p = b + 28 - 4 * i;
        l[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
    }
}

static void duo__store(uint8_t b[32], const uint32_t l[8]) {
    for (int i = 0; i < 8; i++) {
        uint8_t *p = b + 28 - 4 * i;
        p[0] = (uint8_t)(l[i] >> 24);
        p[1] = (uint8_t)(l[i] >> 16);
        p[2] = (uint8_t)(l[i] >> 8);
        p[3] = (uint8_t)l[i];
    }
}

/* d = a - q over 8 limbs; returns the final borrow (1 if a < q). */
static uint32_t duo__sub_q(uint32_t d[8], const uint32_t a[8], const uint32_t q[8]) {
    uint64_t borrow = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t t = (uint64_t)a[i] - q[i] - borrow;
        d[i] = (uint32_t)t;
        borrow = (t >> 63) & 1u;
    }
    return (uint32_t)borrow;
}

/* a = take ? b : a, by mask. */
static void duo__select(uint32_t a[8], const uint32_t b[8], uint32_t take) {
    uint32_t mask = (uint32_t)0 - (take & 1u);
    for (int i = 0; i < 8; i++) {
        a[i] ^= mask & (a[i] ^ b[i]);
    }
}

static uint32_t duo__nonzero(const uint32_t a[8]) {
    uint32_t acc = 0;
    for (int i = 0; i < 8; i++) {
        acc |= a[i];
    }
    return (acc | ((uint32_t)0 - acc)) >> 31;
}

/* out = a*b/2^256 mod q for a, b < q. */
static void duo__mont(const duo__mod256 *m, uint32_t out[8], const uint32_t a[8], const uint32_t b[8]) {
    uint32_t t[10] = {0};
    uint32_t d[8];
    for (int i = 0; i < 8; i++) {
        uint64_t c = 0;
        for (int j = 0; j < 8; j++) {
            c = (uint64_t)t[j] + (uint64_t)a[j] * b[i] + (c >> 32);
            t[j] = (uint32_t)c;
        }
        c = (uint64_t)t[8] + (c >> 32);
        t[8] = (uint32_t)c;
        t[9] = (uint32_t)(c >> 32);
        uint32_t mi = t[0] * m->n0;
        c = (uint64_t)t[0] + (uint64_t)mi * m->q[0];
        for (int j = 1; j < 8; j++) {
            c = (uint64_t)t[j] + (uint64_t)mi * m->q[j] + (c >> 32);
            t[j - 1] = (uint32_t)c;
        }
        c = (uint64_t)t[8] + (c >> 32);
        t[7] = (uint32_t)c;
        t[8] = t[9] + (uint32_t)(c >> 32);
    }
    /* t < 2q: subtract q unless t (with its ninth limb) was already below q */
    uint32_t borrow = duo__sub_q(d, t, m->q);
    uint32_t take = t[8] | (borrow ^ 1u);
    duo__select(t, d, take);
    memcpy(out, t, 32);
    duo_memzero(t, sizeof t);
    duo_memzero(d, sizeof d);
}

int duo__mod256_init(duo__mod256 *m, const BIGNUM *q) {
    uint8_t qb[32];
    int ok = 0;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *r2 = BN_new();

    memset(m, 0, sizeof *m);
    if (ctx == NULL || r2 == NULL || BN_num_bits(q) != 256 || !BN_is_odd(q) || BN_bn2binpad(q, qb, 32) != 32) {
        goto out;
    }
    duo__load(m->q, qb);
    /* n0 = -q^-1 mod 2^32 by Newton's iteration (q odd: x = q is right
     * mod 2^3, each step doubles the correct bits) */
    uint32_t x = m->q[0];
    for (int i = 0; i < 5; i++) {
        x *= 2u - m->q[0] * x;
    }
    m->n0 = (uint32_t)0 - x;
    if (!BN_set_word(r2, 1) || !BN_lshift(r2, r2, 512) || !BN_nnmod(r2, r2, q, ctx) || BN_bn2binpad(r2, qb, 32) != 32) {
        goto out;
    }
    duo__load(m->r2, qb);
    ok = 1;
out:
    BN_free(r2);
    BN_CTX_free(ctx);
    return ok;
}

int duo__mod256_valid(const duo__mod256 *m, const uint8_t s[32]) {
    uint32_t a[8], d[8];
    duo__load(a, s);
    uint32_t ok = duo__sub_q(d, a, m->q) & duo__nonzero(a);
    duo_memzero(a, sizeof a);
    duo_memzero(d, sizeof d);
    return (int)ok;
}

int duo__mod256_add(const duo__mod256 *m, uint8_t out[32], const uint8_t a8[32], const uint8_t b8[32]) {
    uint32_t a[8], b[8], d[8];
    uint64_t c = 0;
    duo__load(a, a8);
    duo__load(b, b8);
    for (int i = 0; i < 8; i++) {
        c = (uint64_t)a[i] + b[i] + (c >> 32);
        a[i] = (uint32_t)c;
    }
    /* a + b < 2q: subtract q if it carried out or is >= q */
    uint32_t borrow = duo__sub_q(d, a, m->q);
    duo__select(a, d, (uint32_t)(c >> 32) | (borrow ^ 1u));
    duo__store(out, a);
    uint32_t nz = duo__nonzero(a);
    duo_memzero(a, sizeof a);
    duo_memzero(b, sizeof b);
    duo_memzero(d, sizeof d);
    return (int)nz;
}

int duo__mod256_mul(const duo__mod256 *m, uint8_t out[32], const uint8_t a8[32], const uint8_t b8[32]) {
    uint32_t a[8], b[8], t[8];
    duo__load(a, a8);
    duo__load(b, b8);
    duo__mont(m, t, a, b);     /* a*b/R */
    duo__mont(m, t, t, m->r2); /* a*b/R * R^2/R = a*b */
    duo__store(out, t);
    uint32_t nz = duo__nonzero(t);
    duo_memzero(a, sizeof a);
    duo_memzero(b, sizeof b);
    duo_memzero(t, sizeof t);
    return (int)nz;
}

int duo__mod256_negate(const duo__mod256 *m, uint8_t out[32], const uint8_t a8[32]) {
    uint32_t a[8], d[8];
    uint64_t borrow = 0;
    duo__load(a, a8);
    for (int i = 0; i < 8; i++) {
        uint64_t t = (uint64_t)m->q[i] - a[i] - borrow;
        d[i] = (uint32_t)t;
        borrow = (t >> 63) & 1u;
    }
    /* a in [1, q-1]: q - a is in [1, q-1]; a == 0 would give q, refused */
    uint32_t nz = duo__nonzero(a);
    duo__store(out, d);
    duo_memzero(a, sizeof a);
    duo_memzero(d, sizeof d);
    return (int)nz;
}
