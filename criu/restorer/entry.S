/*
 * Fixed layout at the start of the blob (see restorer-args.h):
 *   +0   entry: rdi = struct rst_args *, rsp = top of the leader's blob stack
 *   +16  gadget used by the tracer to run a syscall inside the target
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
	int3

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
