// Draws the report's charts (the JSON in #report-data, made by ReportCharts) with ECharts, then
// records on each chart's element what it was given and what ECharts laid out (chart-record.js).
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
  // Twelve phases at most (PhaseTimers.Phase): a colour each.
  var phasePalette = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
    '#9c755f', '#bab0ac', '#86bcb6', '#d4a6c8'];
  function lines(spec) {
    var runs = {};
    spec.series.forEach(function (s) { runs[s.run] = true; });
    // Colour by run when several overlay (or a band must match its line); otherwise a colour per series.
    var byRun = Object.keys(runs).length > 1 || spec.series.some(function (s) { return s.style === 'band'; });
    var series = [];
    spec.series.forEach(function (s, i) {
      var colour = byRun ? palette[s.run % palette.length] : palette[i % palette.length];
      var base = {name: s.name, type: 'line', showSymbol: false, animation: false, color: colour,
        lineStyle: {width: 1.5}};
      if (s.style === 'band') {
        series.push(band(s, colour));
        return;
      }
      var one = Object.assign({}, base, {data: s.data});
      if (s.style === 'dashed') {
        one.lineStyle = {width: 1.2, type: 'dashed'};
      } else if (s.style === 'points') {
        one.showSymbol = true;
        one.symbolSize = 7;
        one.lineStyle = {width: 1, type: 'dotted'};
      } else if (s.style === 'area') {
        one.stack = 'phases';
        one.areaStyle = {opacity: 0.7};
        one.lineStyle = {width: 0.5};
        delete one.color;
      } else if (s.style === 'total') {
        one.color = '#000';
        one.lineStyle = {width: 1};
      }
      series.push(one);
    });
    // ECharts stacks along a category axis only (on a value axis it would stack the steps too): a
    // stacked chart's series share their steps (one run's records), which become the categories.
    var steps = null;
    if (spec.kind === 'stacked') {
      steps = spec.series[0].data.map(function (p) { return p[0]; });
      series.forEach(function (one) {
        if (one.data.length !== steps.length || one.data.some(function (p, i) { return p[0] !== steps[i]; })) {
          console.error(spec.title + ': ' + one.name + ' has other steps than ' + spec.series[0].name);
        }
        one.data = one.data.map(function (p) { return p[1]; });
      });
    }
    return {
      animation: false,
      color: phasePalette,
      grid: {left: 70, right: 24, top: 48, bottom: 64},
      legend: {type: 'scroll', top: 0},
      tooltip: {trigger: 'axis'},
      xAxis: steps ? {type: 'category', data: steps.map(String), boundaryGap: false, name: 'step',
        nameLocation: 'middle', nameGap: 24}
        : {type: 'value', name: spec.xName || 'step', nameLocation: 'middle', nameGap: 24, min: 'dataMin', max: 'dataMax'},
      yAxis: {type: 'value', name: spec.yName, scale: true},
      dataZoom: [{type: 'inside'}, {type: 'slider', height: 16, bottom: 6}],
      series: series
    };
  }

  // The band lo … hi as one polygon (a custom series: ECharts' stacking cannot do it over a value
  // axis); its drawn count is the corners that landed inside the plot.
  var bandDrawn = {};
  function band(s, colour) {
    return {
      name: s.name, type: 'custom', color: colour, data: s.data, encode: {x: 0, y: [1, 2]}, animation: false,
      silent: true, z: 1,
      renderItem: function (params, api) {
        if (params.dataIndex !== 0) {
          return null;
        }
        var box = params.coordSys;
        var upper = s.data.map(function (p) { return api.coord([p[0], p[2]]); });
        var lower = s.data.map(function (p) { return api.coord([p[0], p[1]]); });
        var inside = function (c) {
          return c[0] >= box.x - 1 && c[0] <= box.x + box.width + 1 && c[1] >= box.y - 1 && c[1] <= box.y + box.height + 1;
        };
        bandDrawn[s.name] = upper.filter(function (c, i) { return inside(c) && inside(lower[i]); }).length;
        return {type: 'polygon', shape: {points: upper.concat(lower.reverse())},
          style: {fill: colour, opacity: 0.25}};
      }
    };
  }

  function heatmap(spec) {
    var cells = spec.series[0].data;
    var max = 2;
    cells.forEach(function (c) { max = Math.max(max, c[2]); });
    var experts = [];
    for (var e = 0; e < spec.experts; e++) {
      experts.push(String(e));
    }
    return {
      animation: false,
      grid: {left: 70, right: 24, top: 30, bottom: 80},
      tooltip: {position: 'top'},
      xAxis: {type: 'category', data: spec.columns.map(String), name: 'step', nameLocation: 'middle', nameGap: 24},
      yAxis: {type: 'category', data: experts, name: spec.yName},
      visualMap: {min: 0, max: Math.ceil(max), calculable: true, orient: 'horizontal', left: 'center', bottom: 0,
        itemHeight: 200, inRange: {color: ['#ffffcc', '#fd8d3c', '#800026']}},
      series: [{name: spec.series[0].name, type: 'heatmap', data: cells, progressive: 0, animation: false}]
    };
  }

  var drawnCharts = 0;
  data.charts.forEach(function (spec) {
    var el = document.getElementById(spec.id);
    if (spec.kind === 'heatmap') {
      el.style.height = Math.max(220, 110 + 14 * spec.experts) + 'px';
    }
    bandDrawn = {};
    var chart = echarts.init(el, null, {renderer: 'canvas'});
    chart.setOption(spec.kind === 'heatmap' ? heatmap(spec) : lines(spec));
    roundhouseRecord(chart, spec, el, bandDrawn);
    drawnCharts++;
  });
  document.body.setAttribute('data-charts', String(drawnCharts));
  document.body.setAttribute('data-height', String(document.documentElement.scrollHeight));
})();
