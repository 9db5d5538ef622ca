/* The main() of every unit test: the test file adds its suites in
 * unit_register(); failures make the exit code non-zero for ctest.  Like
 * healthd's, it serves as a plugin host when started as one. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#include "plughost.h"
#include "unit.h"

int main(void)
{
	if (getenv(PLUGHOST_ENV))
		return plughost_main();
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	unit_register();
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	unsigned run = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	return failed ? 1 : (run ? 0 : 1);
}
