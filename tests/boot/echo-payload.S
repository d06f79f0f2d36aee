/* A tiny "kernel" for chardev tests: entered at the Linux 64-bit entry
 * point, it prints a ready line on COM1 and COM2, then echoes what arrives
 * on COM1 upper-cased to both ports (polling, no interrupts) until it reads
 * a '.', and powers off through the ACPI PM1a control register (S5).
 * mkpayload.sh wraps it in a bzImage header. */
    .code64
    .text
    .globl _start
_start:
    lea     stack_top(%rip), %rsp
    lea     msg(%rip), %rsi
1:  lodsb
    test    %al, %al
    jz      2f
    call    putc
    jmp     1b
2:  mov     $0x3fd, %dx             /* COM1 LSR: wait for data ready */
3:  in      %dx, %al
    test    $1, %al
    jz      3b
    mov     $0x3f8, %dx
    in      %dx, %al
    cmp     $'.', %al
    je      poweroff
    cmp     $'a', %al
    jb      4f
    cmp     $'z', %al
    ja      4f
    sub     $32, %al
4:  call    putc
    jmp     2b
poweroff:
    mov     $0x604, %dx             /* PM1a_CNT: SLP_EN with SLP_TYP 0 (S5) */
    mov     $0x2000, %ax
    out     %ax, %dx
5:  hlt
    jmp     5b

/* putc(al) to COM1 and COM2, each after its THR is empty. */
putc:
    mov     %al, %bl
    mov     $0x3fd, %dx
6:  in      %dx, %al
    test    $0x20, %al
    jz      6b
    mov     $0x3f8, %dx
    mov     %bl, %al
    out     %al, %dx
    mov     $0x2fd, %dx
7:  in      %dx, %al
    test    $0x20, %al
    jz      7b
    mov     $0x2f8, %dx
    mov     %bl, %al
    out     %al, %dx
    ret

msg:
    .asciz  "quokka-payload: ready\n"
    .balign 16
    .space  512
stack_top:
