/* `quokka doctor`: the checklist to run before the first VM. One line
 * per check, "OK", "WARN" or "FAIL", with the fix where there is one. */
#ifndef QUOKKA_DOCTOR_DOCTOR_H
#define QUOKKA_DOCTOR_DOCTOR_H

#include <stdio.h>

/* Prints the checklist to out; returns 1 if any check failed, else 0. */
int doctor_run(FILE *out);

#endif
