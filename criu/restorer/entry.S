/*
 * Fixed layout at the start of the blob (see restorer-args.h):
 *   +0   entry: rdi = struct rst_args *, rsp = top of the leader's blob stack
 *   +16  gadget used by the tracer to run a syscall inside the target
 *   +24  rst_unmap_self(start, len): munmap() of the region that holds it;
 *        the fetch at +31 (RST_BLOB_UNMAPPED_OFF) faults
 *   +40  ud2, where a thread stops with SIGILL (RST_BLOB_STOP_ILL_OFF)
 *   +44  a division by the first argument (0), where it stops with SIGFPE
 */
	.section .text.head, "ax"
	.globl rst_head
rst_head:
	andq	$-16, %rsp
	call	rst_main
	ud2
	.org	rst_head + 16, 0xcc
	.globl rst_gadget
rst_gadget:
	syscall
	ud2
	.org	rst_head + 24, 0xcc
	.globl rst_unmap_self
rst_unmap_self:
	movl	$11, %eax		/* munmap */
	syscall
	.org	rst_head + 31		/* (an error here: RST_BLOB_UNMAPPED_OFF moved) */
	ud2
	.org	rst_head + 40, 0xcc	/* RST_BLOB_STOP_ILL_OFF */
	ud2
	.org	rst_head + 44, 0xcc	/* RST_BLOB_STOP_FPE_OFF */
	divl	%edi			/* called with 0 */
	ud2

/*
 * long rst_clone_thread(struct clone_args *ca, size_t size,
 *                       void (*fn)(void *), void *arg)
 * The child starts on ca->stack with nothing of the parent's frame, so it
 * has to be born here rather than in C.
 */
	.text
	.globl rst_clone_thread
rst_clone_thread:
	movq	%rdx, %r8
	movq	%rcx, %r9
	movl	$435, %eax		/* clone3 */
	syscall
	testq	%rax, %rax
	jnz	1f
	xorl	%ebp, %ebp
	andq	$-16, %rsp
	movq	%r9, %rdi
	call	*%r8
	ud2
1:	ret
	.section .note.GNU-stack, "", @progbits
