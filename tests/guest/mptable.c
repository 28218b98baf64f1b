/*
 * Intel MultiProcessor Specification 1.4 table parser: the floating pointer
 * "_MP_" is searched in the first KiB of the EBDA, the last KiB of base
 * memory and the BIOS ROM area; processor entries give the APIC IDs.
 */
#include "guest.h"

struct mp_float {
	char sig[4];
	uint32_t config;
	uint8_t length, rev, checksum, feature[5];
} __attribute__((packed));

struct mp_config {
	char sig[4];
	uint16_t length;
	uint8_t rev, checksum;
	char oem[20];
	uint32_t oem_table;
	uint16_t oem_size, count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum, rsvd;
} __attribute__((packed));

static uint8_t sum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	while (n--)
		s += *b++;
	return s;
}

static const struct mp_float *scan(uintptr_t start, size_t len)
{
	for (uintptr_t a = start; a + 16 <= start + len; a += 16) {
		const struct mp_float *f = (const void *)a;
		if (!memcmp(f->sig, "_MP_", 4) && f->length == 1 && sum(f, 16) == 0)
			return f;
	}
	return NULL;
}

static const struct mp_float *find_float(void)
{
	const struct mp_float *f = NULL;
	uintptr_t ebda = (uintptr_t)*(volatile uint16_t *)0x40e << 4;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		f = scan(ebda, 1024);
	if (!f)
		f = scan(0x9fc00, 1024);
	if (!f)
		f = scan(0xf0000, 0x10000);
	return f;
}

int mp_parse(struct mp_info *mp)
{
	memset(mp, 0, sizeof *mp);
	mp->bsp = -1;
	const struct mp_float *f = find_float();
	if (!f || !f->config || f->feature[0])
		return 0;       /* absent, or a "default configuration" */
	const struct mp_config *c = (const void *)(uintptr_t)f->config;
	if (memcmp(c->sig, "PCMP", 4) || sum(c, c->length))
		return 0;
	mp->lapic_addr = c->lapic;
	const uint8_t *e = (const uint8_t *)(c + 1), *end = (const uint8_t *)c + c->length;
	/* Walk by length like Linux does: qboot leaves the entry count 0. */
	while (e < end) {
		switch (e[0]) {
		case 0:         /* processor: id, version, flags (1 enabled, 2 BSP) */
			if ((e[3] & 1) && mp->ncpus < MAX_CPUS) {
				if (e[3] & 2)
					mp->bsp = mp->ncpus;
				mp->apic_id[mp->ncpus++] = e[1];
			}
			e += 20;
			break;
		case 2:         /* I/O APIC: id, version, flags, address */
			if ((e[3] & 1) && !mp->ioapic_addr)
				mp->ioapic_addr = *(const uint32_t *)(e + 4);
			e += 8;
			break;
		case 1: case 3: case 4:
			e += 8;
			break;
		default:
			return 1;       /* unknown entry: stop, keep what we have */
		}
	}
	return 1;
}
