/*
 * virtio-mmio (version 2) transport (virtio 1.2 §4.2): the ops of
 * virtio.h over the register block, devices from virtio_mmio.device=.
 */
#ifndef VIRTIO_MMIO_H
#define VIRTIO_MMIO_H

#include "virtio.h"

/* Registers (virtio 1.2 §4.2.2). */
#define VM_MAGIC        0x000
#define VM_VERSION      0x004
#define VM_DEVICE_ID    0x008
#define VM_VENDOR_ID    0x00c
#define VM_DEV_FEAT     0x010
#define VM_DEV_FEAT_SEL 0x014
#define VM_DRV_FEAT     0x020
#define VM_DRV_FEAT_SEL 0x024
#define VM_QUEUE_SEL    0x030
#define VM_QUEUE_NUM_MAX 0x034
#define VM_QUEUE_NUM    0x038
#define VM_QUEUE_READY  0x044
#define VM_QUEUE_NOTIFY 0x050
#define VM_INT_STATUS   0x060
#define VM_INT_ACK      0x064
#define VM_STATUS       0x070
#define VM_QUEUE_DESC   0x080   /* low, high at +4 */
#define VM_QUEUE_DRIVER 0x090
#define VM_QUEUE_DEVICE 0x0a0
#define VM_CONFIG_GEN   0x0fc
#define VM_CONFIG       0x100

#define VIRT_MAGIC      0x74726976  /* "virt" */

/* Devices named by virtio_mmio.device=<size>@<base>:<irq> words. */
struct vm_cmdline_dev {
	uint64_t size, base;
	uint32_t irq;
};
int vm_cmdline_devices(struct vm_cmdline_dev *out, int max);
int vm_parse_size(const char *s, const char **end, uint64_t *out);

/* Bind d to the registers at c; 0 (and a "vs skip" line) if they are not virtio-mmio v2 of device_id. */
int vm_probe(struct vdev *d, const struct vm_cmdline_dev *c, uint32_t device_id);

static inline uint32_t vm_read(struct vdev *d, uint32_t reg) { return mmio_read32(d->base + reg); }
static inline void vm_write(struct vdev *d, uint32_t reg, uint32_t v) { mmio_write32(d->base + reg, v); }

#endif
