/*
 * virtio-pci modern transport (virtio 1.2 §4.1): vendor capabilities
 * locate the common, notify, ISR and device configuration structures in
 * memory BARs; interrupts by MSI-X (msix.c) or INTx through the IOAPIC.
 */
#ifndef VIRTIO_PCI_H
#define VIRTIO_PCI_H

#include "virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_NO_VECTOR  0xffff

extern int vpci_use_msix;       /* `vs-msix off` before the first vs command: INTx */

/*
 * Bind d to the next virtio-pci function on bus 0 for virtio device id
 * (modern 0x1040+id, or transitional with modern capabilities); 0 when
 * there is none left. Sets up BARs, MSI-X (masked until irq_route).
 */
int vpci_next(struct vdev *d, uint32_t device_id);

#endif
