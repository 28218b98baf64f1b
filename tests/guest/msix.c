/* MSI-X table programming; see msix.h. */
#include "msix.h"

#define MSIX_CTRL_ENABLE (1u << 15)
#define MSIX_CTRL_MASKALL (1u << 14)

int msix_probe(const struct pci_dev *p, struct msix *m)
{
	memset(m, 0, sizeof *m);
	uint8_t cap = pci_find_cap(p, PCI_CAP_MSIX, 0);
	if (!cap)
		return 0;
	uint16_t ctrl = pci_cfg16(p, (uint8_t)(cap + 2));
	uint32_t tbl = pci_cfg32(p, (uint8_t)(cap + 4));
	unsigned bir = tbl & 7;
	uint16_t nvec = (uint16_t)((ctrl & 0x7ff) + 1);
	uint64_t off = tbl & ~7u;
	if (bir > 5 || !p->bar[bir] || off + 16ull * nvec > p->bar_size[bir])
		return 0;
	m->cap = cap;
	m->nvec = nvec;
	m->table = (uintptr_t)(p->bar[bir] + off);
	return 1;
}

void msix_enable(const struct pci_dev *p, const struct msix *m, int on)
{
	uint16_t ctrl = pci_cfg16(p, (uint8_t)(m->cap + 2)) & ~(MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
	pci_set16(p, (uint8_t)(m->cap + 2), (uint16_t)(ctrl | (on ? MSIX_CTRL_ENABLE : 0)));
}

void msix_set(const struct msix *m, uint16_t i, uint8_t apic, uint8_t vector, int masked)
{
	uintptr_t e = m->table + 16u * i;
	mmio_write32(e + 12, 1);                                /* mask while changing */
	mmio_write32(e + 0, 0xfee00000u | (uint32_t)apic << 12);
	mmio_write32(e + 4, 0);
	mmio_write32(e + 8, vector);                            /* fixed, edge */
	if (!masked)
		mmio_write32(e + 12, 0);
}
