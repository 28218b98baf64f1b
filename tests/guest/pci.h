/*
 * PCI configuration mechanism #1 (ports 0xcf8/0xcfc, allowed at CPL3 by
 * the TSS I/O bitmap), bus 0 enumeration, capability lists, and BAR
 * sizing/assignment for BARs the firmware left unassigned or put above
 * 4 GiB (the page tables map 0..4 GiB only).
 */
#ifndef PCI_H
#define PCI_H

#include "guest.h"

#define PCI_VENDOR      0x00
#define PCI_DEVICE      0x02
#define PCI_COMMAND     0x04
#define PCI_STATUS      0x06
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0        0x10
#define PCI_CAP_PTR     0x34
#define PCI_INT_LINE    0x3c
#define PCI_INT_PIN     0x3d

#define PCI_CMD_IO      (1u << 0)
#define PCI_CMD_MEM     (1u << 1)
#define PCI_CMD_MASTER  (1u << 2)
#define PCI_CMD_INTX_OFF (1u << 10)
#define PCI_STATUS_CAPS (1u << 4)

#define PCI_CAP_MSIX    0x11
#define PCI_CAP_VENDOR  0x09

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint8_t int_line, int_pin;
	uint64_t bar[6];                /* memory BAR addresses (0: none or I/O) */
	uint64_t bar_size[6];
	uint8_t bar_moved[6];           /* assigned by us */
};

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint8_t pci_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v);
void pci_write16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint16_t v);

/* 1 if configuration mechanism #1 answers (not on microvm). */
int pci_present(void);
/* Functions on bus 0 (devices 0-31, all functions of multifunction devices). */
int pci_scan(struct pci_dev *out, int max);
/* Offset of the next capability with id after offset `from` (0: from the start), 0 if none. */
uint8_t pci_find_cap(const struct pci_dev *p, uint8_t id, uint8_t from);
/*
 * Size the memory BARs, assign those at 0 or above 4 GiB in a free window
 * from 0xc0000000, then enable memory space and bus mastering.
 */
void pci_setup_bars(struct pci_dev *p);

static inline uint32_t pci_cfg32(const struct pci_dev *p, uint8_t off) { return pci_read32(p->bus, p->dev, p->fn, off); }
static inline uint16_t pci_cfg16(const struct pci_dev *p, uint8_t off) { return pci_read16(p->bus, p->dev, p->fn, off); }
static inline uint8_t pci_cfg8(const struct pci_dev *p, uint8_t off) { return pci_read8(p->bus, p->dev, p->fn, off); }
static inline void pci_set16(const struct pci_dev *p, uint8_t off, uint16_t v) { pci_write16(p->bus, p->dev, p->fn, off, v); }

#endif
