/* The test guest's 64-bit image, loaded at 1 MiB. entry32 (offset 0) is
 * reached from setup.S; entry64 (offset 0x200) is the Linux boot
 * protocol's 64-bit entry, with %rsi pointing at boot_params. Both end
 * in the same few CPL0 instructions: own GDT, TSS, IDT and page tables
 * (user-accessible identity map of the low 4 GiB), then IRETQ to CPL3
 * with IOPL=3, where main.c does all the work. CPL0 code is kept this
 * short because on PVM hosts it is emulated one instruction at a time. */
#define KCODE 0x18
#define KDATA 0x20
#define UCODE 0x33
#define UDATA 0x2b
#define TSSSEL 0x40
#define MSI_VECTOR 0x31                      /* testguest/virtio.h says the same */
#define INTX_VECTOR 0x32
#define APIC_TIMER_VECTOR 0x33
#define IDT_ENTRIES (APIC_TIMER_VECTOR + 1)

    .section .head, "ax"
    .code32
    .globl entry32
entry32:
    mov     $0x10, %ax                       /* setup.S's flat data segment */
    mov     %ax, %ds
    lgdt    gdt_ptr32
    mov     $KDATA, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    mov     $pml4, %eax
    mov     %eax, %cr3
    mov     %cr4, %eax
    or      $0x20, %eax                      /* PAE */
    mov     %eax, %cr4
    mov     $0xc0000080, %ecx
    rdmsr
    or      $0x100, %eax                     /* EFER.LME */
    wrmsr
    mov     %cr0, %eax
    or      $0x80000001, %eax                /* PG PE */
    mov     %eax, %cr0
    ljmp    $KCODE, $entry64

    .org 0x200
    .code64
    .globl entry64
entry64:
    mov     $0x3f8, %edx                     /* the marker byte benchmarks wait for */
    mov     $'\n', %al
    out     %al, %dx
    lgdt    gdt_ptr
    mov     $pml4, %eax
    mov     %rax, %cr3
    mov     $KDATA, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     $kstack_top, %esp
    pushq   $KCODE
    pushq   $1f
    lretq
1:  mov     %rsi, boot_params(%rip)
    /* TSS descriptor base (bits 0-23 at +2, 24-31 at +7). */
    mov     $tss, %eax
    mov     %ax, gdt + TSSSEL + 2
    shr     $16, %eax
    mov     %al, gdt + TSSSEL + 4
    mov     %ah, gdt + TSSSEL + 7
    movq    $kstack_top, tss + 4(%rip)       /* RSP0 */
    movw    $104, tss + 102(%rip)            /* I/O bitmap right after the TSS: all ports */
    movb    $0xff, tss + 104 + 8192(%rip)
    mov     $TSSSEL, %ax
    ltr     %ax
    /* IDT: vectors 0-31 to trap stubs, 0x20 (IRQ0) to the tick handler. */
    mov     $idt, %edi
    mov     $trap_stubs, %eax
    xor     %ecx, %ecx
2:  mov     %ax, (%rdi)
    movw    $KCODE, 2(%rdi)
    movw    $0x8e00, 4(%rdi)
    mov     %eax, %edx
    shr     $16, %edx
    mov     %dx, 6(%rdi)
    add     $16, %rdi
    add     $16, %eax
    inc     %ecx
    cmp     $33, %ecx
    jne     2b
    /* MSI_VECTOR to the MSI handler, INTX_VECTOR to the INTx one; 33-48
     * stay not present. */
    mov     $idt + MSI_VECTOR * 16, %edi
    mov     $msi, %eax
    call    set_gate
    mov     $idt + INTX_VECTOR * 16, %edi
    mov     $intx, %eax
    call    set_gate
    mov     $idt + APIC_TIMER_VECTOR * 16, %edi
    mov     $apic_tick, %eax
    call    set_gate
    lidt    idt_ptr
    mov     $0xff, %al                       /* a BIOS may have left IRQ0 open at vector 8 */
    out     %al, $0x21
    out     %al, $0xa1
    /* Drop to CPL3 with IOPL=3 and interrupts on (the 8259 masks them
     * until main() wants them): PVM keeps the real IOPL at 0 for the
     * guest, so its ports come from the TSS bitmap and STI/CLI would
     * fault there. */
    pushq   $UDATA
    pushq   $ustack_top
    pushq   $0x3202
    pushq   $UCODE
    pushq   $guest_main
    iretq

/* Stub n (16 bytes each) pushes its vector; 32 is the timer. */
    .balign 16
trap_stubs:
    .set    vec, 0
    .rept   32
    .balign 16
    pushq   $vec
    jmp     trap_common
    .set    vec, vec + 1
    .endr
    .balign 16
tick:
    incq    ticks(%rip)
    push    %rax
    mov     $0x20, %al
    out     %al, $0x20                       /* EOI to the 8259 */
    pop     %rax
    iretq

/* A message-signalled interrupt (virtio-blk's MSI-X vector): count it,
 * EOI to the local APIC. */
msi:
    incq    msis(%rip)
    push    %rax
    mov     $0xfee000b0, %eax
    movl    $0, (%rax)
    pop     %rax
    iretq

/* A level-triggered INTx through the I/O APIC: read the device's ISR
 * (which lowers its line) before the EOI, as a driver must. */
intx:
    incq    intxs(%rip)
    push    %rax
    mov     intx_isr(%rip), %rax
    movb    (%rax), %al
    mov     $0xfee000b0, %eax
    movl    $0, (%rax)
    pop     %rax
    iretq

/* The local APIC's timer. */
apic_tick:
    incq    apic_ticks(%rip)
    push    %rax
    mov     $0xfee000b0, %eax
    movl    $0, (%rax)
    pop     %rax
    iretq

/* Interrupt gate at %rdi to handler %eax (below 4 GiB), DPL0. */
set_gate:
    mov     %ax, (%rdi)
    movw    $KCODE, 2(%rdi)
    movw    $0x8e00, 4(%rdi)
    shr     $16, %eax
    mov     %ax, 6(%rdi)
    ret

trap_common:
    mov     (%rsp), %rdi                     /* vector */
    mov     8(%rsp), %rsi                    /* error code or RIP */
    mov     32(%rsp), %rdx                   /* RFLAGS when an error code was pushed */
    and     $-16, %rsp
    call    guest_trap
3:  hlt
    jmp     3b

    .section .data
    .balign 16
gdt:
    .quad   0
    .quad   0x00cf9a000000ffff               /* 0x08: 32-bit code */
    .quad   0x00cf92000000ffff               /* 0x10: data */
    .quad   0x00af9a000000ffff               /* 0x18: 64-bit code, DPL0 */
    .quad   0x00cf92000000ffff               /* 0x20: data, DPL0 */
    .quad   0x00cff2000000ffff               /* 0x28: data, DPL3 */
    .quad   0x00affa000000ffff               /* 0x30: 64-bit code, DPL3 */
    .quad   0
    .quad   0x0000890000002068               /* 0x40: TSS + I/O bitmap (base patched) */
    .quad   0
gdt_end:
gdt_ptr:
    .word   gdt_end - gdt - 1
    .quad   gdt
gdt_ptr32:
    .word   gdt_end - gdt - 1
    .long   gdt
idt_ptr:
    .word   IDT_ENTRIES * 16 - 1
    .quad   idt
    .globl  ticks, apic_ticks, msis, intxs, intx_isr, boot_params, pdpt
ticks:  .quad 0
apic_ticks: .quad 0
msis:   .quad 0
intxs:  .quad 0
intx_isr: .quad 0
boot_params: .quad 0


/* Identity map of 4 GiB in 2 MiB pages, user-accessible. */
    .balign 4096
pml4:
    .quad   pdpt + 7
    .fill   511, 8, 0
pdpt:
    .quad   pd + 7, pd + 0x1007, pd + 0x2007, pd + 0x3007
    .fill   508, 8, 0
pd:
    .set    pg, 0
    .rept   2048
    .quad   (pg << 21) | 0x87
    .set    pg, pg + 1
    .endr

    .section .bss
    .balign 16
tss:
    .fill   104 + 8192 + 16, 1, 0
    .balign 16
idt:    .fill IDT_ENTRIES * 16, 1, 0
    .balign 16
    .fill   4096, 1, 0
kstack_top:
    .fill   16384, 1, 0
ustack_top:
    .section .note.GNU-stack, "", @progbits
