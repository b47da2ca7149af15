// Entry of dist/webview/endpoint.js: styles first, then the app.
import '../components/elements';
import baseCss from '../components/base.css';
import endpointCss from './endpoint.css';
import { adoptStyles } from '../components/styles';
import { EndpointApp } from './endpointApp';

adoptStyles(baseCss, endpointCss);
const root = document.getElementById('app') ?? document.body.appendChild(document.createElement('main'));
root.id = 'app';
new EndpointApp(root);
