// The scripts a report page inlines, embedded into the binary at build time
// (launch/report/embed_assets.cmake generates their definitions), so
// `ctrps report` needs no file at run time and the page opens offline.
#pragma once

#include <string_view>

namespace ctrps::launch::report {

// Chart.js (Debian's libjs-chart.js, MIT licence), UMD build.
std::string_view ChartJsSource();
// launch/report/report.js: draws the charts from the page's data.
std::string_view ReportScriptSource();

}  // namespace ctrps::launch::report
