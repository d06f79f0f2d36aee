/* The real-mode part of the test guest's bzImage: the Linux boot
 * protocol header (Documentation/arch/x86/boot.rst) and the few
 * instructions a real-mode loader (QEMU's -kernel) jumps to. They enter
 * protected mode and jump to entry32 in the 64-bit image at 0x100000.
 * A loader that uses the 64-bit entry (Quokka) never runs this code. */
    .code16
    .section .text
    .globl _start
_start:
    .org 0x1f1
setup_sects:    .byte 1
root_flags:     .word 0
syssize:        .long 0x1000                 /* 64 KiB in 16-byte units (unused by loaders) */
ram_size:       .word 0
vid_mode:       .word 0xffff
root_dev:       .word 0
boot_flag:      .word 0xaa55
    .org 0x200
    jmp     setup_start
    .ascii  "HdrS"
version:        .word 0x020c
realmode_swtch: .long 0
start_sys_seg:  .word 0
kernel_version: .word 0
type_of_loader: .byte 0
loadflags:      .byte 0x01                   /* LOADED_HIGH: protected-mode code at 1 MiB */
setup_move_size: .word 0
code32_start:   .long 0x100000
ramdisk_image:  .long 0
ramdisk_size:   .long 0
bootsect_kludge: .long 0
heap_end_ptr:   .word 0
ext_loader_ver: .byte 0
ext_loader_type: .byte 0
cmd_line_ptr:   .long 0
initrd_addr_max: .long 0x7fffffff
kernel_alignment: .long 0x200000
relocatable_kernel: .byte 0
min_alignment:  .byte 21
xloadflags:     .word 0x0001                 /* XLF_KERNEL_64: entry at +0x200 */
cmdline_size:   .long 255
hardware_subarch: .long 0
hardware_subarch_data: .quad 0
payload_offset: .long 0
payload_length: .long 0
setup_data:     .quad 0
pref_address:   .quad 0x100000
init_size:      .long 0x100000
handover_offset: .long 0
kernel_info_offset: .long 0

/* CS = setup segment + 0x20; boot_params sit at the setup segment. */
setup_start:
    cli
    mov     %cs, %ax
    sub     $0x20, %ax
    mov     %ax, %ds
    movzwl  %ax, %esi
    shl     $4, %esi                         /* %esi: boot_params, linear */
    leal    gdt(%esi), %eax
    movl    %eax, gdt_ptr + 2
    lgdtl   gdt_ptr
    mov     %cr0, %eax
    or      $1, %eax
    mov     %eax, %cr0
    ljmpl   $0x08, $0x100000                 /* entry32 in head.S */

    .balign 8
gdt:
    .quad   0
    .quad   0x00cf9a000000ffff               /* 0x08: 32-bit code */
    .quad   0x00cf92000000ffff               /* 0x10: data */
gdt_end:
gdt_ptr:
    .word   gdt_end - gdt - 1
    .long   0                                /* patched: linear address of gdt */
    .org 0x400
    .section .note.GNU-stack, "", @progbits
