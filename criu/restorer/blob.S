/* Embeds the flat restorer blob into the criu binary. */
	.section .rodata
	.balign 4096
	.globl restorer_blob
restorer_blob:
	.incbin BLOB_PATH
	.globl restorer_blob_end
restorer_blob_end:
	.section .note.GNU-stack, "", @progbits
