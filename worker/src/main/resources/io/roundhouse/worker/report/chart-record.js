// Records on a chart's element what it was given and what ECharts laid out, per series, for the
// tests that open the page in headless Chromium (shared by the run report and bench cluster's page):
// data-given / data-drawn = {"series name": points}; a point counts as drawn when its layout lies
// inside the plot area (a heatmap cell: when it has a rectangle; a custom series: customDrawn[name],
// which its renderItem counted). data-rect: where the chart is on the page.
function roundhouseRecord(chart, spec, el, customDrawn) {
  var given = {};
  var drawn = {};
  spec.series.forEach(function (s) { given[s.name] = s.data.length; });
  var model = chart.getModel();
  var grid = model.getComponent('grid').coordinateSystem.getRect();
  model.eachSeries(function (sm) {
    var d = sm.getData();
    var n = 0;
    // A line's layout is one array of x, y pairs (ECharts 5 keeps it typed); a heatmap's, a rectangle per cell.
    var points = d.getLayout('points');
    for (var i = 0; i < d.count(); i++) {
      if (sm.subType === 'custom') {
        n = customDrawn[sm.name] || 0;
        break;
      } else if (sm.subType === 'heatmap') {
        n += d.getItemGraphicEl(i) ? 1 : 0;
      } else {
        var x = points ? points[2 * i] : NaN;
        var y = points ? points[2 * i + 1] : NaN;
        n += x >= grid.x - 1 && x <= grid.x + grid.width + 1 && y >= grid.y - 1 && y <= grid.y + grid.height + 1 ? 1 : 0;
      }
    }
    drawn[sm.name] = n;
  });
  var r = el.getBoundingClientRect();
  el.setAttribute('data-given', JSON.stringify(given));
  el.setAttribute('data-drawn', JSON.stringify(drawn));
  el.setAttribute('data-rect', [Math.round(r.left + window.scrollX), Math.round(r.top + window.scrollY),
    Math.round(r.width), Math.round(r.height)].join(','));
}
