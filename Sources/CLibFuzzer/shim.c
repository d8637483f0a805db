// SwiftPM needs one source file in a C target; the declaration is all this target provides.
#include "CLibFuzzer.h"
