/* virtio-net at CPL3: one frame out, one back. The guest asks who has
 * 10.0.2.2 (the user-mode network's gateway) and waits for the ARP
 * reply, which any user-mode network stack sends. */
#include "virtio.h"

#define HDR 12                                   /* virtio_net_hdr with num_buffers */

static struct vq rxq, txq;
static uint8_t rxbuf[HDR + 1514], txbuf[HDR + 42];

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static void arp_request(uint8_t *f)
{
    static const uint8_t head[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
                                    0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1 };
    for (unsigned i = 0; i < sizeof(head); i++)
        f[i] = head[i];
    for (int i = 0; i < 6; i++)
        f[6 + i] = f[22 + i] = mac[i];           /* source MAC, sender MAC */
    static const uint8_t ips[] = { 10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2 };
    for (unsigned i = 0; i < sizeof(ips); i++)
        f[28 + i] = ips[i];                      /* sender IP, target MAC (0), target IP */
}

static int is_arp_reply(const uint8_t *f, int len)
{
    return len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 2 &&
           f[28] == 10 && f[29] == 0 && f[30] == 2 && f[31] == 2;
}

void check_virtio_net(void)
{
    struct vdev d;
    int r = virtio_find(&d, 0x1041, 0x1000);
    if (!r) {
        puts_("# no virtio-net device\n");
        return;
    }
    if (r < 0 || virtio_start(&d) < 0 || virtio_queue(&d, 0, &rxq) < 0 ||
        virtio_queue(&d, 1, &txq) < 0) {
        result(0, "virtio-net: device set up");
        return;
    }
    virtio_ready(&d);
    rxq.desc[0] = (struct vq_desc){ (uintptr_t)rxbuf, sizeof(rxbuf), 2, 0 };
    vq_add(&rxq);
    for (int i = 0; i < HDR; i++)
        txbuf[i] = 0;
    arp_request(txbuf + HDR);
    txq.desc[0] = (struct vq_desc){ (uintptr_t)txbuf, sizeof(txbuf), 0, 0 };
    vq_add(&txq);
    int sent = vq_wait(&txq) >= 0, got = 0;
    for (int tries = 0; sent && !got && tries < 8; tries++) {
        int len = vq_wait(&rxq);
        if (len < 0)
            break;
        got = is_arp_reply(rxbuf + HDR, len - HDR);
        if (!got)
            vq_add(&rxq);                        /* something else: listen again */
    }
    result(sent && got, "virtio-net: ARP request out, reply from 10.0.2.2 back");
}
