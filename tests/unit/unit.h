/* Shared by the CUnit tests: each test_NAME.c defines unit_register(). */
#ifndef HEALTHD_UNIT_H
#define HEALTHD_UNIT_H

#include <CUnit/CUnit.h>

void unit_register(void);

/* Add a suite made of a NULL-terminated array of CU_TestInfo. */
#define UNIT_SUITE(name, tests)                                              \
	do {                                                                 \
		CU_pSuite s_ = CU_add_suite(name, NULL, NULL);               \
		for (CU_TestInfo *t_ = (tests); t_->pName; t_++)             \
			CU_add_test(s_, t_->pName, t_->pTestFunc);           \
	} while (0)

#endif
