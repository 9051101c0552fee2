/*
 * x86_64 System V context switch:
 *   int conc__ctx_switch(void **from, void *to, int code)
 * "returns" the code that whoever resumes us passes as its own third
 * argument; coro.c tail-calls it, so the resumed side continues straight in
 * its caller (no `ret` crosses stacks and the return-stack predictor stays
 * in step).
 *
 * Saves only what the ABI says a callee must preserve (rbx, rbp, r12-r15,
 * and with CONC_CORO_SAVE_FPU the MXCSR and x87 control words) on the
 * current stack, stores the stack pointer in *from, loads `to` as the stack
 * pointer, restores the same set and continues at the saved return address
 * with an indirect jump: a `ret` would pop a return-stack-buffer entry that
 * belongs to another stack and mispredict on every switch.
 *
 * No system call: the signal mask is a per-thread property, not a
 * per-coroutine one (see docs/coroutines.md).
 *
 * Intel CET: this object carries no .note.gnu.property, so the linker does
 * not mark libconc as IBT or shadow-stack compatible and the loader leaves
 * both off for a process that uses it (a shadow stack would see returns it
 * never saw calls for). The jump target is a return address, not an endbr64
 * landing pad, which is why IBT must stay off too.
 *
 * Frame layout (lowest address first), as conc__ctx_make builds it too:
 *   [fpu: mxcsr(4) x87cw(2) pad(2)]  r15 r14 r13 r12 rbx rbp  return-address
 */
	.text
	.globl	conc__ctx_switch
	.hidden	conc__ctx_switch
	.type	conc__ctx_switch, @function
	.p2align 4
conc__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
#ifdef CONC_CORO_SAVE_FPU
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
#endif
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
#ifdef CONC_CORO_SAVE_FPU
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
#endif
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	popq	%rcx
	movl	%edx, %eax
	jmpq	*%rcx
	.cfi_endproc
	.size	conc__ctx_switch, .-conc__ctx_switch

/* First code a new coroutine runs: rbx holds its entry function (which never
 * returns). The stack is 16-byte aligned here, so the call keeps the ABI. */
	.globl	conc__ctx_boot
	.hidden	conc__ctx_boot
	.type	conc__ctx_boot, @function
	.p2align 4
conc__ctx_boot:
	.cfi_startproc
	.cfi_undefined rip
	xorl	%ebp, %ebp
	callq	*%rbx
	ud2
	.cfi_endproc
	.size	conc__ctx_boot, .-conc__ctx_boot

	.section .note.GNU-stack,"",@progbits
