// Draws bench cluster's charts (the JSON in #report-data, made by ClusterReport) with ECharts, then
// records on each chart's element what it was given and what ECharts laid out (chart-record.js).
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
  function axis(name, log) {
    return {type: log ? 'log' : 'value', name: name, nameLocation: 'middle', nameGap: 28, scale: true,
      logBase: log ? 2 : undefined};
  }
  function lines(spec) {
    var colours = {};
    var next = 0;
    var series = spec.series.map(function (s) {
      // A series and its dashed twin (same collective or arm) share a colour.
      var key = s.name.replace(/ (busbw|algbw|measured|model|step|communication)$/, '');
      if (!(key in colours)) {
        colours[key] = palette[next++ % palette.length];
      }
      var one = {name: s.name, type: 'line', data: s.data, animation: false, color: colours[key], showSymbol: true,
        symbolSize: 5, lineStyle: {width: 1.5}};
      if (s.style === 'dashed') {
        one.lineStyle = {width: 1.2, type: 'dashed'};
        one.showSymbol = false;
      } else if (s.style === 'points') {
        one.symbolSize = 8;
        one.lineStyle = {width: 0};
      }
      return one;
    });
    var y = axis(spec.yName, spec.yLog);
    y.nameLocation = 'end';
    y.nameGap = 12;
    return {
      animation: false,
      grid: {left: 80, right: 24, top: 48, bottom: 48},
      legend: {type: 'scroll', top: 0},
      tooltip: {trigger: 'item'},
      xAxis: axis(spec.xName, spec.xLog),
      yAxis: y,
      series: series
    };
  }
  function heatmap(spec) {
    var cells = spec.series[0].data;
    var max = 0;
    var min = Infinity;
    cells.forEach(function (c) { max = Math.max(max, c[2]); min = Math.min(min, c[2]); });
    return {
      animation: false,
      grid: {left: 120, right: 24, top: 20, bottom: 80},
      tooltip: {position: 'top'},
      xAxis: {type: 'category', data: spec.labels, name: spec.xName, nameLocation: 'middle', nameGap: 24},
      yAxis: {type: 'category', data: spec.labels, name: spec.yName, inverse: true},
      visualMap: {min: min === Infinity ? 0 : min, max: max, calculable: true, orient: 'horizontal', left: 'center',
        bottom: 0, itemHeight: 200, inRange: {color: ['#ffffcc', '#fd8d3c', '#800026']}},
      series: [{name: spec.series[0].name, type: 'heatmap', data: cells, progressive: 0, animation: false,
        label: {show: spec.labels.length <= 8, formatter: function (p) { return p.value[2].toPrecision(3); }}}]
    };
  }
  var drawnCharts = 0;
  data.charts.forEach(function (spec) {
    var el = document.getElementById(spec.id);
    if (spec.kind === 'heatmap') {
      el.style.height = Math.max(260, 140 + 28 * spec.labels.length) + 'px';
    }
    var chart = echarts.init(el, null, {renderer: 'canvas'});
    chart.setOption(spec.kind === 'heatmap' ? heatmap(spec) : lines(spec));
    roundhouseRecord(chart, spec, el, {});
    drawnCharts++;
  });
  document.body.setAttribute('data-charts', String(drawnCharts));
  document.body.setAttribute('data-height', String(document.documentElement.scrollHeight));
})();
