import { render } from 'preact';
import { App } from './app';
import { restoreSession } from './store';
import './styles.css';

const root = document.getElementById('app')!;
render(<App ready={false} />, root);
restoreSession().finally(() => render(<App ready={true} />, root));
