// The public API of reclite: include this one header. Holds no code of its own.
#pragma once

#include "reclite/core/bounds.hpp"
#include "reclite/core/checksum.hpp"
#include "reclite/core/config.hpp"
#include "reclite/core/error.hpp"
#include "reclite/core/mapped_file.hpp"
#include "reclite/core/result.hpp"
#include "reclite/core/span.hpp"
#include "reclite/format/model_file.hpp"
#include "reclite/models/mind.hpp"
#include "reclite/models/model.hpp"
#include "reclite/models/sdm.hpp"
#include "reclite/models/sequence_session.hpp"
#include "reclite/models/sequence_state.hpp"
#include "reclite/models/session.hpp"
#include "reclite/pipeline/multi_interest_recall.hpp"
