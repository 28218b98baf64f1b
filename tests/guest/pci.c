/* PCI configuration mechanism #1 and bus 0 enumeration; see pci.h. */
#include "pci.h"

#define CONF_ADDR       0xcf8
#define CONF_DATA       0xcfc
#define WIN_START       0xc0000000ull   /* 3..4 GiB: mapped uncached by entry32.S */
#define WIN_END         0xfec00000ull   /* IOAPIC, LAPIC, firmware above */

static void sel(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	outl(CONF_ADDR, 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 |
	     (uint32_t)fn << 8 | (off & 0xfc));
}

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	sel(bus, dev, fn, off);
	return inl(CONF_DATA);
}

uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	sel(bus, dev, fn, off);
	return inw((uint16_t)(CONF_DATA + (off & 2)));
}

uint8_t pci_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	sel(bus, dev, fn, off);
	return inb((uint16_t)(CONF_DATA + (off & 3)));
}

void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v)
{
	sel(bus, dev, fn, off);
	outl(CONF_DATA, v);
}

void pci_write16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint16_t v)
{
	sel(bus, dev, fn, off);
	outw((uint16_t)(CONF_DATA + (off & 2)), v);
}

int pci_present(void)
{
	outl(CONF_ADDR, 0x80000000u);           /* Linux pci_check_type1() */
	return inl(CONF_ADDR) == 0x80000000u;
}

int pci_scan(struct pci_dev *out, int max)
{
	int n = 0;
	for (uint8_t dev = 0; dev < 32 && n < max; dev++) {
		uint8_t nfn = 1;
		for (uint8_t fn = 0; fn < nfn && n < max; fn++) {
			uint32_t id = pci_read32(0, dev, fn, PCI_VENDOR);
			if ((id & 0xffff) == 0xffff)
				continue;
			if (fn == 0 && (pci_read8(0, dev, 0, PCI_HEADER_TYPE) & 0x80))
				nfn = 8;
			struct pci_dev *p = &out[n++];
			memset(p, 0, sizeof *p);
			p->dev = dev;
			p->fn = fn;
			p->vendor = (uint16_t)id;
			p->device = (uint16_t)(id >> 16);
			uint32_t irq = pci_read32(0, dev, fn, PCI_INT_LINE);
			p->int_line = (uint8_t)irq;
			p->int_pin = (uint8_t)(irq >> 8);
		}
	}
	return n;
}

uint8_t pci_find_cap(const struct pci_dev *p, uint8_t id, uint8_t from)
{
	if (!(pci_cfg16(p, PCI_STATUS) & PCI_STATUS_CAPS))
		return 0;
	uint8_t off = from ? pci_cfg8(p, (uint8_t)(from + 1)) : pci_cfg8(p, PCI_CAP_PTR);
	for (int guard = 0; off >= 0x40 && guard < 48; guard++) {
		off &= 0xfc;
		uint16_t hdr = pci_cfg16(p, off);
		if ((hdr & 0xff) == id)
			return off;
		off = (uint8_t)(hdr >> 8);
	}
	return 0;
}

/* Base and size of BAR i; *is64 set for 64-bit memory BARs. 0 size: none or I/O. */
static uint64_t bar_probe(const struct pci_dev *p, int i, uint64_t *size, int *is64)
{
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * i);
	uint32_t lo = pci_cfg32(p, off);
	*size = 0;
	*is64 = 0;
	if (lo & 1)
		return 0;               /* I/O BAR */
	*is64 = ((lo >> 1) & 3) == 2 && i < 5;
	uint32_t hi = *is64 ? pci_cfg32(p, (uint8_t)(off + 4)) : 0;
	pci_write32(p->bus, p->dev, p->fn, off, 0xffffffffu);
	uint32_t slo = pci_cfg32(p, off), shi = 0xffffffffu;
	pci_write32(p->bus, p->dev, p->fn, off, lo);
	if (*is64) {
		pci_write32(p->bus, p->dev, p->fn, (uint8_t)(off + 4), 0xffffffffu);
		shi = pci_cfg32(p, (uint8_t)(off + 4));
		pci_write32(p->bus, p->dev, p->fn, (uint8_t)(off + 4), hi);
	}
	uint64_t mask = ((uint64_t)shi << 32 | (slo & ~0xfu));
	if (!*is64)
		mask |= 0xffffffff00000000ull;
	if (!(slo & ~0xfu))
		return 0;
	*size = ~mask + 1;
	return ((uint64_t)hi << 32 | lo) & ~0xfull;
}

/* Memory BAR ranges in the window, for first-fit allocation. */
static struct { uint64_t base, end; } used[6 * 64 + 8];
static int nused = -1;

static void win_init(void)
{
	static struct pci_dev all[64];
	int n = pci_scan(all, 64);
	nused = 0;
	for (int k = 0; k < n; k++) {
		const struct pci_dev *q = &all[k];
		uint16_t cmd = pci_cfg16(q, PCI_COMMAND);
		pci_set16(q, PCI_COMMAND, cmd & ~PCI_CMD_MEM);  /* no decoding of 0xffffffff */
		for (int i = 0; i < 6; i++) {
			uint64_t size;
			int is64;
			uint64_t b = bar_probe(q, i, &size, &is64);
			if (size && b < WIN_END && b + size > WIN_START) {
				used[nused].base = b;
				used[nused++].end = b + size;
			}
			i += is64;
		}
		pci_set16(q, PCI_COMMAND, cmd);
	}
}

/* Lowest size-aligned free range of the window, 0 if none. */
static uint64_t win_alloc(uint64_t size)
{
	if (nused < 0)
		win_init();
	uint64_t b = WIN_START;
	for (int moved = 1; moved && b + size <= WIN_END; ) {
		moved = 0;
		for (int k = 0; k < nused; k++)
			if (b < used[k].end && used[k].base < b + size) {
				b = (used[k].end + size - 1) & ~(size - 1);
				moved = 1;
			}
	}
	if (b + size > WIN_END || nused >= (int)(sizeof used / sizeof used[0]))
		return 0;
	used[nused].base = b;
	used[nused++].end = b + size;
	return b;
}

void pci_setup_bars(struct pci_dev *p)
{
	uint16_t cmd = pci_cfg16(p, PCI_COMMAND);
	pci_set16(p, PCI_COMMAND, cmd & ~PCI_CMD_MEM);
	for (int i = 0; i < 6; i++) {
		uint64_t size;
		int is64;
		uint64_t b = bar_probe(p, i, &size, &is64);
		p->bar_size[i] = size;
		if (size && (!b || b + size > 0x100000000ull)) {
			b = win_alloc(size);
			if (!b) {
				printf("guest: pci %02x:%02x.%x BAR%d (0x%lx bytes) does not fit below 4 GiB\n",
				       p->bus, p->dev, p->fn, i, size);
				b = 0;
			} else {
				uint8_t off = (uint8_t)(PCI_BAR0 + 4 * i);
				uint32_t lo = pci_cfg32(p, off) & 0xf;
				pci_write32(p->bus, p->dev, p->fn, off, (uint32_t)b | lo);
				if (is64)
					pci_write32(p->bus, p->dev, p->fn, (uint8_t)(off + 4), 0);
				p->bar_moved[i] = 1;
			}
		}
		p->bar[i] = size ? b : 0;
		i += is64;
	}
	pci_set16(p, PCI_COMMAND, (uint16_t)(cmd | PCI_CMD_MEM | PCI_CMD_MASTER));
}
