/*
 * AArch64 (AAPCS64) context switch:
 *   int conc__ctx_switch(void **from, void *to, int code)
 * "returns" the code that whoever resumes us passes as its third argument.
 *
 * Saves only the callee-saved state: x19-x28, the frame pointer x29, the
 * link register x30 and the low halves of v8-v15 (d8-d15), plus FPCR with
 * CONC_CORO_SAVE_FPU, on the current stack; stores sp in *from, loads `to`
 * as sp, restores the same set and continues at the saved x30 with `br`, an
 * indirect branch, not `ret`, whose return-address predictor would always
 * miss across stacks. No system call.
 *
 * BTI/PAC: this object carries no .note.gnu.property, so the linker does not
 * mark libconc BTI-compatible and branch targets are not enforced (the
 * saved x30 is an ordinary return address, not a `bti j` landing pad).
 *
 * Frame (176 bytes, offsets from sp): x19..x28 0-79, x29 80, x30 88,
 * d8..d15 96-159, fpcr 160, pad 168.
 */
	.text
	.globl	conc__ctx_switch
	.hidden	conc__ctx_switch
	.type	conc__ctx_switch, %function
	.p2align 4
conc__ctx_switch:
	.cfi_startproc
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
#ifdef CONC_CORO_SAVE_FPU
	mrs	x9, fpcr
	str	x9, [sp, #160]
#endif
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
#ifdef CONC_CORO_SAVE_FPU
	ldr	x9, [sp, #160]
	msr	fpcr, x9
#endif
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	mov	w0, w2
	br	x30
	.cfi_endproc
	.size	conc__ctx_switch, .-conc__ctx_switch

/* First code a new coroutine runs: x19 holds its entry function (which never
 * returns); sp is the 16-byte aligned top of the stack. */
	.globl	conc__ctx_boot
	.hidden	conc__ctx_boot
	.type	conc__ctx_boot, %function
	.p2align 4
conc__ctx_boot:
	.cfi_startproc
	.cfi_undefined x30
	mov	x29, #0
	mov	x30, #0
	blr	x19
	brk	#0
	.cfi_endproc
	.size	conc__ctx_boot, .-conc__ctx_boot

	.section .note.GNU-stack,"",%progbits
