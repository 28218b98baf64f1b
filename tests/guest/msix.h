/* MSI-X capability (PCI 3.0 §6.8.2): table entries and enable/mask. */
#ifndef MSIX_H
#define MSIX_H

#include "pci.h"

struct msix {
	uint8_t cap;            /* config offset of the capability, 0 if none */
	uint16_t nvec;          /* table size */
	uintptr_t table;        /* mapped table address */
};

/* Find the capability and its table (BARs must be set up); 0 if absent or unmapped. */
int msix_probe(const struct pci_dev *p, struct msix *m);
void msix_enable(const struct pci_dev *p, const struct msix *m, int on);
/* Entry i: fixed, edge, physical destination apic, IDT vector; masked or not. */
void msix_set(const struct msix *m, uint16_t i, uint8_t apic, uint8_t vector, int masked);

#endif
